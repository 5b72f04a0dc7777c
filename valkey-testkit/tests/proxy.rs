//! The fault-injecting proxy, between the crate's client and a real server.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use valkey_client::{Cmd, Connection, ConnectionConfig, ErrorKind};
use valkey_testkit::{FaultProxy, Server, ServerConfig};

async fn setup() -> (Server, FaultProxy) {
    let server = Server::start(ServerConfig::new()).await.unwrap();
    let proxy = FaultProxy::start(server.port()).await.unwrap();
    assert_eq!(proxy.upstream(), server.port());
    (server, proxy)
}

fn config(proxy: &FaultProxy) -> ConnectionConfig {
    ConnectionConfig::tcp("127.0.0.1", proxy.port()).connect_timeout(Some(Duration::from_secs(5)))
}

async fn through(proxy: &FaultProxy) -> Connection {
    Connection::connect(&config(proxy)).await.unwrap()
}

async fn get_int(server: &Server, key: &str) -> Option<i64> {
    let mut direct = server.connect().await.unwrap();
    let value = direct.request(&Cmd::new("GET").arg(key)).await.unwrap();
    value.as_str().map(|s| s.parse().unwrap())
}

#[tokio::test]
async fn plain_relay_counts_commands() {
    let (_server, proxy) = setup().await;
    let mut conn = through(&proxy).await;
    let before = proxy.commands_forwarded();
    conn.request(&Cmd::new("SET").arg("k").arg("v"))
        .await
        .unwrap();
    let v = conn.request(&Cmd::new("GET").arg("k")).await.unwrap();
    assert_eq!(v.as_str(), Some("v"));
    assert_eq!(proxy.commands_seen("SET"), 1);
    assert_eq!(proxy.commands_seen("get"), 1);
    assert_eq!(proxy.commands_forwarded(), before + 2);
    assert_eq!(proxy.connections_accepted(), 1);
    assert_eq!(proxy.open_connections(), 1);
    assert_eq!(proxy.faults_triggered(), 0);
    // A pipeline goes through in order.
    let replies = conn
        .pipeline(&[Cmd::new("INCR").arg("n"), Cmd::new("INCR").arg("n")])
        .await
        .unwrap();
    assert_eq!(replies[1].as_ref().unwrap().as_int(), Some(2));
    assert_eq!(proxy.commands_seen("INCR"), 2);
}

#[tokio::test]
async fn cut_before_request_does_not_reach_the_server() {
    let (server, proxy) = setup().await;
    let mut conn = through(&proxy).await;
    conn.request(&Cmd::new("SET").arg("n").arg("5"))
        .await
        .unwrap();
    proxy.cut_before_request("INCR");
    let err = conn.request(&Cmd::new("INCR").arg("n")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connection, "{err}");
    assert_eq!(get_int(&server, "n").await, Some(5));
    assert_eq!(proxy.commands_seen("INCR"), 0);
    assert_eq!(proxy.faults_triggered(), 1);
    // Fired once: a new connection works.
    let mut conn = through(&proxy).await;
    let v = conn.request(&Cmd::new("INCR").arg("n")).await.unwrap();
    assert_eq!(v.as_int(), Some(6));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_after_request_runs_the_command_once() {
    let (server, proxy) = setup().await;
    let mut conn = through(&proxy).await;
    conn.request(&Cmd::new("SET").arg("n").arg("5"))
        .await
        .unwrap();
    proxy.cut_after_request("INCR");
    let err = conn.request(&Cmd::new("INCR").arg("n")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connection, "{err}");
    assert_eq!(get_int(&server, "n").await, Some(6));
    assert_eq!(proxy.commands_seen("INCR"), 1);
    assert_eq!(proxy.faults_triggered(), 1);
}

#[tokio::test]
async fn cut_mid_reply_breaks_a_large_reply() {
    let (server, proxy) = setup().await;
    let big = "x".repeat(200_000);
    let mut direct = server.connect().await.unwrap();
    direct
        .request(&Cmd::new("SET").arg("big").arg(big.as_str()))
        .await
        .unwrap();
    let mut conn = through(&proxy).await;
    proxy.cut_mid_reply("GET");
    let err = conn.request(&Cmd::new("GET").arg("big")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connection, "{err}");
    assert!(err.message().contains("middle of a reply"), "{err}");
    assert_eq!(proxy.faults_triggered(), 1);
}

/// Sends `request` raw and reads until the proxy closes the connection.
async fn raw_until_eof(port: u16, request: &[u8]) -> Vec<u8> {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    stream.write_all(request).await.unwrap();
    let mut received = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut received))
        .await
        .unwrap()
        .unwrap();
    received
}

#[tokio::test]
async fn reply_faults_strike_the_faulted_commands_reply_in_a_pipeline() {
    let (server, proxy) = setup().await;
    let mut direct = server.connect().await.unwrap();
    direct
        .request(&Cmd::new("SET").arg("k").arg("hello world"))
        .await
        .unwrap();
    let pipeline = b"*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*1\r\n$4\r\nPING\r\n";
    // The reply to GET is `$11\r\nhello world\r\n`, 18 bytes: 9 get through.
    proxy.cut_mid_reply("GET");
    let received = raw_until_eof(proxy.port(), pipeline).await;
    assert_eq!(received, b"+PONG\r\n$11\r\nhell");
    proxy.cut_after_request("GET");
    let received = raw_until_eof(proxy.port(), pipeline).await;
    assert_eq!(received, b"+PONG\r\n");
    assert_eq!(proxy.commands_seen("GET"), 2);
    assert_eq!(proxy.commands_seen("PING"), 2);
    // Inline commands are not RESP: relayed raw.
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", proxy.port()))
        .await
        .unwrap();
    stream.write_all(b"PING\r\n").await.unwrap();
    let mut reply = [0; 7];
    stream.read_exact(&mut reply).await.unwrap();
    assert_eq!(&reply, b"+PONG\r\n");
}

#[tokio::test]
async fn latency_delays_requests() {
    let (_server, proxy) = setup().await;
    let mut conn = through(&proxy).await;
    proxy.set_latency(Duration::from_millis(200));
    let start = Instant::now();
    conn.request(&Cmd::new("PING")).await.unwrap();
    assert!(start.elapsed() >= Duration::from_millis(200));
    proxy.set_latency(Duration::ZERO);
    let start = Instant::now();
    conn.request(&Cmd::new("PING")).await.unwrap();
    assert!(start.elapsed() < Duration::from_millis(200));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn black_hole_times_out_until_healed() {
    let (_server, proxy) = setup().await;
    let mut conn =
        Connection::connect(&config(&proxy).response_timeout(Some(Duration::from_millis(300))))
            .await
            .unwrap();
    proxy.black_hole(true);
    let err = conn.request(&Cmd::new("PING")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    // New connections hang in the handshake.
    let hung =
        Connection::connect(&config(&proxy).connect_timeout(Some(Duration::from_millis(300))))
            .await
            .unwrap_err();
    assert_eq!(hung.kind(), ErrorKind::Timeout, "{hung}");
    proxy.heal();
    let mut conn = through(&proxy).await;
    assert_eq!(
        conn.request(&Cmd::new("PING")).await.unwrap().as_str(),
        Some("PONG")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn black_hole_open_connections_spares_new_ones() {
    let (server, proxy) = setup().await;
    let silent = || config(&proxy).response_timeout(Some(Duration::from_millis(300)));
    let mut used = Connection::connect(&silent()).await.unwrap();
    used.request(&Cmd::new("PING")).await.unwrap();
    // Idle since its handshake: open all the same, so black-holed too.
    let mut idle = Connection::connect(&silent()).await.unwrap();
    let mut kept = Connection::connect(&silent()).await.unwrap();
    proxy.black_hole_open_connections();
    for conn in [&mut used, &mut idle] {
        let err = conn
            .request(&Cmd::new("SET").arg("k").arg("lost"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    }
    assert_eq!(
        get_int(&server, "k").await,
        None,
        "nothing reached the server"
    );
    assert_eq!(proxy.commands_seen("SET"), 0);
    // A connection opened afterwards relays as usual...
    let mut fresh = Connection::connect(&silent()).await.unwrap();
    fresh
        .request(&Cmd::new("SET").arg("k").arg("7"))
        .await
        .unwrap();
    assert_eq!(get_int(&server, "k").await, Some(7));
    // ...and heal() does not revive the black-holed ones.
    proxy.heal();
    let err = kept.request(&Cmd::new("PING")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert_eq!(
        fresh.request(&Cmd::new("PING")).await.unwrap().as_str(),
        Some("PONG")
    );
}

#[tokio::test]
async fn refused_connections_fail_fast_then_recover() {
    let (_server, proxy) = setup().await;
    let mut open = through(&proxy).await;
    proxy.refuse_connections(true);
    let start = Instant::now();
    let err = Connection::connect(&config(&proxy)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connection, "{err}");
    assert!(start.elapsed() < Duration::from_secs(1));
    let refused = tokio::net::TcpStream::connect(("127.0.0.1", proxy.port()))
        .await
        .unwrap_err();
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
    // Open connections are untouched.
    open.request(&Cmd::new("PING")).await.unwrap();
    proxy.refuse_connections(false);
    let mut conn = through(&proxy).await;
    conn.request(&Cmd::new("PING")).await.unwrap();
    // heal() lifts a refusal too.
    proxy.refuse_connections(true);
    assert!(Connection::connect(&config(&proxy)).await.is_err());
    proxy.heal();
    through(&proxy).await;
}

#[tokio::test]
async fn reset_all_breaks_open_connections() {
    let (_server, proxy) = setup().await;
    let mut a = through(&proxy).await;
    let mut b = through(&proxy).await;
    assert_eq!(proxy.open_connections(), 2);
    proxy.reset_all();
    for conn in [&mut a, &mut b] {
        let err = conn.request(&Cmd::new("PING")).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Connection, "{err}");
    }
    // Tasks end asynchronously: the count follows within a moment.
    let deadline = Instant::now() + Duration::from_secs(1);
    while proxy.open_connections() != 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(proxy.open_connections(), 0);
    through(&proxy).await;
}

#[tokio::test]
async fn upstream_can_move() {
    let (_server, proxy) = setup().await;
    let other = Server::start(ServerConfig::new()).await.unwrap();
    let mut direct = other.connect().await.unwrap();
    direct
        .request(&Cmd::new("SET").arg("where").arg("other"))
        .await
        .unwrap();
    proxy.set_upstream(other.port());
    let mut conn = through(&proxy).await;
    let v = conn.request(&Cmd::new("GET").arg("where")).await.unwrap();
    assert_eq!(v.as_str(), Some("other"));
}

#[tokio::test]
async fn drop_stops_the_proxy() {
    let (_server, proxy) = setup().await;
    let port = proxy.port();
    let mut conn = through(&proxy).await;
    drop(proxy);
    assert!(
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
    );
    let err = conn.request(&Cmd::new("PING")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connection, "{err}");
}
