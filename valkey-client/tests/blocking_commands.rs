//! Blocking commands (`BLPOP`, `XREAD ... BLOCK`) run on dedicated
//! connections from a bounded pool, not on the shared one:
//!
//! - a `BLPOP` with its own timeout longer than the response timeout gets
//!   its nil reply, while GETs on the same client stay fast meanwhile;
//! - a `BLPOP` whose future is dropped closes its connection, so a later
//!   push is not popped for nobody;
//! - a call deadline ends a `BLPOP 0` with a Timeout, and the client goes on;
//! - with `max_blocking_connections(2)` a third call waits for a free one;
//! - `XREAD BLOCK` is extended past the response timeout too.

mod common;

use std::time::{Duration, Instant};

use valkey_client::Commands;
use valkey_client::{CallOptions, Cmd, ErrorKind, Valkey, Value};
use valkey_testkit::{Server, ServerConfig};

use common::{blocked_clients, local, wait_blocked_clients};

/// Bounds every wait on the client, so a hang fails the test.
const BOUND: Duration = Duration::from_secs(10);

fn blpop(key: &str, timeout: u64) -> Cmd {
    Cmd::new("BLPOP").arg(key).arg(timeout)
}

async fn bounded<F: std::future::Future>(what: &str, fut: F) -> F::Output {
    tokio::time::timeout(BOUND, fut)
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within {BOUND:?}"))
}

async fn server_and_client(response_timeout: Option<Duration>) -> (Server, Valkey) {
    let server = Server::start(ServerConfig::new()).await.unwrap();
    let client = local(server.port())
        .response_timeout(response_timeout)
        .build()
        .await
        .unwrap();
    (server, client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blpop_outlasts_the_response_timeout_and_holds_up_no_get() {
    let (server, client) = server_and_client(Some(Duration::from_secs(1))).await;
    client.set("k", "v").await.unwrap();
    let started = Instant::now();
    let waiter = client.clone();
    let blpop_task = tokio::spawn(async move {
        let reply = waiter.request::<Value>(&blpop("list", 2)).await;
        (reply, started.elapsed())
    });
    // The GETs must run while the BLPOP waits in the server.
    assert!(
        wait_blocked_clients(&server, 1, BOUND).await,
        "BLPOP never blocked"
    );
    // One task, one GET at a time: each latency is the round trip alone.
    let mut latencies = Vec::with_capacity(1000);
    for _ in 0..1000 {
        let t = Instant::now();
        let got: Option<String> = client.get("k").await.unwrap();
        latencies.push(t.elapsed());
        assert_eq!(got.as_deref(), Some("v"));
    }
    assert!(
        !blpop_task.is_finished(),
        "the GETs did not overlap the BLPOP"
    );
    latencies.sort();
    let p99 = latencies[latencies.len() * 99 / 100];
    assert!(
        p99 < Duration::from_millis(5),
        "GET p99 {p99:?} beside a BLPOP"
    );
    let (reply, took) = bounded("BLPOP list 2", blpop_task).await.unwrap();
    assert_eq!(reply.unwrap(), Value::Nil);
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_secs(3),
        "BLPOP list 2 took {took:?}"
    );
}

#[tokio::test]
async fn a_dropped_blpop_pops_nothing_for_nobody() {
    let (server, client) = server_and_client(None).await;
    let forever = blpop("list", 0);
    let call = tokio::time::timeout(
        Duration::from_millis(100),
        client.request::<Value>(&forever),
    );
    // Checked halfway: the BLPOP did block in the server before its
    // future was dropped.
    let check = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        blocked_clients(&server).await
    };
    let (dropped, blocked) = tokio::join!(call, check);
    assert!(dropped.is_err(), "BLPOP 0 returned: {dropped:?}");
    assert_eq!(blocked, 1, "the BLPOP was not blocked in the server");
    // At once: nothing waits for the server to notice the closed socket.
    let len: i64 = client
        .request(&Cmd::new("RPUSH").arg("list").arg("x"))
        .await
        .unwrap();
    assert_eq!(len, 1);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let items: Vec<String> = client
        .request(&Cmd::new("LRANGE").arg("list").arg(0).arg(-1))
        .await
        .unwrap();
    assert_eq!(items, ["x"], "the element was popped for a dropped BLPOP");
    assert_eq!(blocked_clients(&server).await, 0);
}

#[tokio::test]
async fn a_call_deadline_ends_blpop_forever_and_the_client_goes_on() {
    let (server, client) = server_and_client(None).await;
    let options = CallOptions::new().timeout(Duration::from_millis(300));
    let started = Instant::now();
    let result = bounded(
        "BLPOP list 0 with a deadline",
        client.request_with::<Value>(&blpop("list", 0), &options),
    )
    .await;
    let took = started.elapsed();
    let err = result.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(
        took >= Duration::from_millis(280) && took < Duration::from_millis(1500),
        "the 300 ms deadline ended BLPOP after {took:?}"
    );
    // The timed-out BLPOP's connection is gone: a push stays in the list.
    client.set("k", "v").await.unwrap();
    let got: Option<String> = client.get("k").await.unwrap();
    assert_eq!(got.as_deref(), Some("v"));
    let _: i64 = client
        .request(&Cmd::new("RPUSH").arg("list").arg("x"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let len: i64 = client.request(&Cmd::new("LLEN").arg("list")).await.unwrap();
    assert_eq!(len, 1, "the element was popped for a timed-out BLPOP");
    assert_eq!(blocked_clients(&server).await, 0);
    // And blocking commands still work.
    let reply: Value = bounded("BLPOP list 1", client.request(&blpop("list", 1)))
        .await
        .unwrap();
    assert!(matches!(reply, Value::Array(_)), "{reply:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_third_blocking_call_waits_for_one_of_two_connections() {
    let server = Server::start(ServerConfig::new()).await.unwrap();
    let client = local(server.port())
        .max_blocking_connections(2)
        .build()
        .await
        .unwrap();
    let started = Instant::now();
    let mut calls = Vec::new();
    for i in 0..3 {
        let client = client.clone();
        calls.push(tokio::spawn(async move {
            client
                .request::<Value>(&blpop(&format!("empty{i}"), 1))
                .await
        }));
    }
    // Never more than two in the server at once.
    let mut most = 0;
    while started.elapsed() < Duration::from_millis(900) {
        most = most.max(blocked_clients(&server).await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(most, 2, "blocked clients seen at most");
    for call in calls {
        let reply = bounded("BLPOP empty 1", call).await.unwrap();
        assert_eq!(reply.unwrap(), Value::Nil);
    }
    // Two rounds of 1 s: the third ran after one of the first two.
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_secs(4),
        "three BLPOP 1 on two connections took {took:?}"
    );
}

#[tokio::test]
async fn xread_block_outlasts_the_response_timeout() {
    let (_server, client) = server_and_client(Some(Duration::from_millis(500))).await;
    let started = Instant::now();
    let xread = Cmd::new("XREAD")
        .arg("BLOCK")
        .arg(1000)
        .arg("STREAMS")
        .arg("stream")
        .arg("$");
    let reply: Value = bounded("XREAD BLOCK 1000", client.request(&xread))
        .await
        .unwrap();
    let took = started.elapsed();
    assert_eq!(reply, Value::Nil);
    assert!(
        took >= Duration::from_millis(950) && took < Duration::from_millis(2500),
        "XREAD BLOCK 1000 took {took:?}"
    );
    client.ping().await.unwrap();
}
