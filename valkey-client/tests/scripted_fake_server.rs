//! Replies a real server can never send (malformed, truncated, absurdly
//! large), from a **scripted fake server**: a TCP listener that reads one
//! request and answers with fixed bytes. Everything else is tested against
//! real valkey-server processes.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use valkey_client::{Cmd, Connection, ConnectionConfig, Delivery, ErrorKind, Protocol};

/// Caps the memory of this test binary, to show that a length prefix
/// claiming a terabyte allocates nothing of the sort: an allocation past the
/// cap aborts the test binary.
#[global_allocator]
static ALLOCATOR: cap::Cap<std::alloc::System> = cap::Cap::new(std::alloc::System, usize::MAX);

/// What the fake server saw after sending its script.
struct Outcome {
    /// The client closed the socket (read returned 0) after the reply.
    client_closed: bool,
}

/// Starts a fake server that waits for one request, writes `script`, then
/// (if `close_after`) closes; otherwise it waits to see whether the client
/// drops the connection.
async fn fake_server(
    script: &'static [u8],
    close_after: bool,
) -> (u16, tokio::task::JoinHandle<Outcome>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 4096];
        let n = sock.read(&mut buf).await.unwrap();
        assert!(n > 0, "client sent nothing");
        sock.write_all(script).await.unwrap();
        if close_after {
            return Outcome {
                client_closed: false,
            };
        }
        // The client should drop the connection right after the bad reply.
        let closed = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                match sock.read(&mut buf).await {
                    Ok(0) | Err(_) => return true,
                    Ok(_) => {}
                }
            }
        })
        .await
        .unwrap_or(false);
        Outcome {
            client_closed: closed,
        }
    });
    (port, task)
}

/// A config with no handshake traffic: RESP2, no auth, no SETINFO.
fn plain(port: u16) -> ConnectionConfig {
    ConnectionConfig::tcp("127.0.0.1", port)
        .protocol(Protocol::Resp2)
        .set_lib_info(false)
        .response_timeout(Some(Duration::from_secs(5)))
}

async fn expect_invalid_response(script: &'static [u8], what: &str) {
    let (port, server) = fake_server(script, false).await;
    let mut conn = Connection::connect(&plain(port)).await.unwrap();
    let started = Instant::now();
    let err = conn.request(&Cmd::new("GET").arg("k")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidResponse, "{what}: {err}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{what}: must fail at once, not wait"
    );
    assert!(conn.is_broken(), "{what}: connection must be dropped");
    let outcome = server.await.unwrap();
    assert!(
        outcome.client_closed,
        "{what}: the server must see the close"
    );
    // A later request fails at once, unsent.
    let again = conn.request(&Cmd::new("PING")).await.unwrap_err();
    assert_eq!(again.kind(), ErrorKind::Connection);
    assert_eq!(again.delivery(), Delivery::NotSent);
}

#[tokio::test]
async fn unknown_type_byte() {
    expect_invalid_response(b"?what\r\n", "unknown type").await;
}

#[tokio::test]
async fn bad_integer() {
    expect_invalid_response(b":12a\r\n", "bad integer").await;
}

#[tokio::test]
async fn bad_length() {
    expect_invalid_response(b"$-7\r\n", "negative length").await;
}

#[tokio::test]
async fn truncated_bulk_followed_by_more_data() {
    // Claims 5 bytes, the CRLF that must follow them is not there.
    expect_invalid_response(b"$5\r\nabc\r\n+OK\r\n", "truncated bulk").await;
}

#[tokio::test]
async fn nesting_bomb() {
    let bomb: &'static [u8] = b"*1\r\n".repeat(1000).leak();
    expect_invalid_response(bomb, "deep nesting").await;
}

#[tokio::test]
async fn terabyte_bulk_and_array_allocate_nothing_large() {
    ALLOCATOR
        .set_limit(ALLOCATOR.allocated() + (256 << 20))
        .unwrap();

    expect_invalid_response(b"$1099511627776\r\n", "2^40 bulk").await;
    expect_invalid_response(b"*1099511627776\r\n", "2^40 array").await;
}

#[tokio::test]
async fn server_disappearing_mid_reply_is_a_connection_error() {
    // A real network drop looks exactly like this, so it is a Connection error
    // (retryable by the retry layer), with the request's outcome unknown.
    let (port, server) = fake_server(b"$10\r\nabc", true).await;
    let mut conn = Connection::connect(&plain(port)).await.unwrap();
    let err = conn.request(&Cmd::new("GET").arg("k")).await.unwrap_err();
    server.await.unwrap();
    assert_eq!(err.kind(), ErrorKind::Connection, "{err}");
    assert_eq!(err.delivery(), Delivery::SentNoReply);
    assert!(err.to_string().contains("middle of a reply"), "{err}");
    assert!(conn.is_broken());
}

#[tokio::test]
async fn silent_server_gives_timeout_and_drops_connection() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let keep = tokio::spawn(async move {
        let (sock, _) = listener.accept().await.unwrap();
        tokio::time::sleep(Duration::from_secs(3)).await;
        drop(sock);
    });
    let config = plain(port).response_timeout(Some(Duration::from_millis(200)));
    let mut conn = Connection::connect(&config).await.unwrap();
    let started = Instant::now();
    let err = conn.request(&Cmd::new("GET").arg("k")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert_eq!(err.delivery(), Delivery::SentNoReply);
    assert!(started.elapsed() < Duration::from_secs(1));
    assert!(
        conn.is_broken(),
        "a late reply would be taken for the next one's"
    );
    keep.abort();
}
