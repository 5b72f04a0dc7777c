//! A request that times out with its reply outstanding retires its
//! connection: the next request opens a fresh one. The client here has only
//! an overall `request_timeout` (no response timeout, so no watchdog ever
//! declares a silent connection dead): without the retirement, every request
//! after the first timeout would go to the same silent socket and time out
//! too, until TCP keepalive gave up a minute later. This holds for a single
//! command (INCR, GET), for a pipeline, for many callers timing out at once
//! (one new connection, not one each), and for a pipeline whose timed-out
//! commands follow an error reply.
//!
//! The fault proxy's `black_hole_open_connections` silences the connection
//! the client holds while new ones still work, as a NAT or firewall that
//! drops one flow does.

use std::time::{Duration, Instant};

use valkey_client::Commands;
use valkey_client::{Cmd, Delivery, Error, ErrorKind, Pipeline, Valkey};
use valkey_testkit::{FaultProxy, Server};

mod common;

use common::{server_and_proxy, through};

const REQUEST_TIMEOUT: Duration = Duration::from_millis(300);

/// A client through the proxy with an overall deadline and 3 retries, but
/// no response timeout.
async fn client(proxy: &FaultProxy) -> Valkey {
    through(proxy)
        .request_timeout(Some(REQUEST_TIMEOUT))
        .build()
        .await
        .expect("connect through the proxy")
}

async fn read_int(server: &Server, key: &str) -> Option<i64> {
    let mut admin = server.connect().await.unwrap();
    let value = admin.request(&Cmd::new("GET").arg(key)).await.unwrap();
    value.as_str().map(|s| s.parse().unwrap())
}

/// The error of a call whose request was written to a silent connection
/// and waited out the whole deadline.
fn assert_timed_out(what: &str, err: &Error, took: Duration) {
    assert_eq!(err.kind(), ErrorKind::Timeout, "{what}: {err}");
    assert_eq!(err.delivery(), Delivery::SentNoReply, "{what}: {err}");
    // The deadline, not some earlier failure and not much later: nothing
    // else bounds the wait.
    assert!(
        took >= REQUEST_TIMEOUT - Duration::from_millis(20),
        "{what} gave up before its deadline: {took:?}"
    );
    assert!(
        took < REQUEST_TIMEOUT + Duration::from_millis(700),
        "{what} overran its deadline: {took:?}"
    );
}

/// Runs `call` once its connection was black-holed (it must time out), then
/// `next`, which must succeed on a new connection within 1 s.
async fn black_hole_then<A, B, FA, FB>(proxy: &FaultProxy, what: &str, call: FA, next: FB) -> B
where
    FA: std::future::Future<Output = Result<A, Error>>,
    FB: std::future::Future<Output = Result<B, Error>>,
    A: std::fmt::Debug,
{
    let accepted = proxy.connections_accepted();
    proxy.black_hole_open_connections();
    let started = Instant::now();
    let err = call.await.expect_err(what);
    assert_timed_out(what, &err, started.elapsed());
    // Nothing new was opened for the timed-out call itself: its deadline
    // was spent, so it was not retried.
    assert_eq!(proxy.connections_accepted(), accepted, "{what}");

    let started = Instant::now();
    let value = next
        .await
        .unwrap_or_else(|e| panic!("the call after {what} failed: {e}"));
    let took = started.elapsed();
    assert!(took < Duration::from_secs(1), "after {what}: took {took:?}");
    assert_eq!(
        proxy.connections_accepted(),
        accepted + 1,
        "after {what}: the next call must open exactly one new connection"
    );
    value
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_call_after_a_timeout_runs_on_a_fresh_connection() {
    let (server, proxy) = server_and_proxy().await;
    let client = client(&proxy).await;
    assert_eq!(client.incr("counter").await.unwrap(), 1);
    assert_eq!(proxy.connections_accepted(), 1);

    // INCR is not safe to repeat: it fails without a retry whatever the
    // deadline, so the connection the next call finds is the retirement's
    // doing alone.
    let n = black_hole_then(
        &proxy,
        "a black-holed INCR",
        client.incr("counter"),
        client.incr("counter"),
    )
    .await;
    // The swallowed INCR never reached the server.
    assert_eq!(n, 2);
    assert_eq!(read_int(&server, "counter").await, Some(2));
    assert_eq!(proxy.commands_seen("INCR"), 2);

    // GET is safe to repeat, but its one attempt used up the deadline: the
    // same holds for reads.
    client.set("k", "v").await.unwrap();
    let got: Option<String> = black_hole_then(
        &proxy,
        "a black-holed GET",
        client.get::<Option<String>>("k"),
        client.get::<Option<String>>("k"),
    )
    .await;
    assert_eq!(got.as_deref(), Some("v"));

    // And a pipeline whose replies never come.
    let mut lost = Pipeline::new();
    lost.cmd("SET").arg("p").arg("lost");
    lost.cmd("GET").arg("p");
    let mut next = Pipeline::new();
    next.cmd("SET").arg("p").arg("kept");
    next.cmd("GET").arg("p");
    let pipeline_call = async {
        let results = client.pipeline(&mut lost).await?;
        // The outer result is only for an unsendable pipeline: the timeout
        // is each command's.
        for result in &results {
            assert!(result.is_err(), "{results:?}");
        }
        results.into_iter().next().unwrap()
    };
    let next_call = async {
        let results = client.pipeline(&mut next).await?;
        results.into_iter().last().unwrap()
    };
    let got = black_hole_then(&proxy, "a black-holed pipeline", pipeline_call, next_call).await;
    assert_eq!(got.as_str(), Some("kept"));
    assert_eq!(proxy.commands_seen("SET"), 2, "the lost SET never arrived");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_timeouts_retire_the_connection_once() {
    const CALLERS: usize = 8;
    let (_server, proxy) = server_and_proxy().await;
    let client = client(&proxy).await;
    client.set("k", "v").await.unwrap();
    proxy.black_hole_open_connections();
    let started = Instant::now();
    let calls = (0..CALLERS).map(|_| {
        let client = client.clone();
        tokio::spawn(async move { client.get::<Option<String>>("k").await })
    });
    for call in calls.collect::<Vec<_>>() {
        let err = call.await.unwrap().expect_err("a black-holed GET");
        assert_timed_out("a black-holed GET", &err, started.elapsed());
    }
    assert_eq!(proxy.connections_accepted(), 1);

    // Every caller retired the same connection; the first of the next calls
    // opens a new one and the others share it: one retirement, not one new
    // connection per timed-out caller.
    let started = Instant::now();
    let calls = (0..CALLERS).map(|_| {
        let client = client.clone();
        tokio::spawn(async move { client.get::<Option<String>>("k").await })
    });
    for call in calls.collect::<Vec<_>>() {
        let got = call.await.unwrap().expect("a GET after the timeouts");
        assert_eq!(got.as_deref(), Some("v"));
    }
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(proxy.connections_accepted(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipeline_timed_out_after_an_error_reply_retires_its_connection() {
    let (server, proxy) = server_and_proxy().await;
    let client = client(&proxy).await;
    client
        .request::<i64>(&Cmd::new("HSET").arg("h").arg("f").arg("v"))
        .await
        .unwrap();
    client.set("k", "v").await.unwrap();
    // Writes wait while reads are answered: the pipeline's first command
    // gets its answer, an error reply, and its second one outlasts the
    // deadline. Which of them failed first must not matter: the connection
    // has a reply outstanding all the same.
    let mut admin = server.connect().await.unwrap();
    admin
        .request(&Cmd::new("CLIENT").arg("PAUSE").arg(5000).arg("WRITE"))
        .await
        .unwrap();
    let mut pipe = Pipeline::new();
    pipe.cmd("GET").arg("h");
    pipe.cmd("SET").arg("paused").arg("x");
    let started = Instant::now();
    let results = client.pipeline(&mut pipe).await.unwrap();
    let took = started.elapsed();
    let wrongtype = results[0].as_ref().expect_err("GET of a hash");
    assert_eq!(wrongtype.code(), Some("WRONGTYPE"), "{wrongtype}");
    let timeout = results[1].as_ref().expect_err("a SET while writes wait");
    assert_timed_out("a SET while writes wait", timeout, took);
    // Now the connection goes silent too, as when the network is what the
    // timeout was about. The next call (a read, answered during the pause)
    // must run on a fresh connection.
    proxy.black_hole_open_connections();
    let accepted = proxy.connections_accepted();
    let got: Option<String> = client
        .get("k")
        .await
        .unwrap_or_else(|e| panic!("the call after the pipeline failed: {e}"));
    assert_eq!(got.as_deref(), Some("v"));
    assert_eq!(proxy.connections_accepted(), accepted + 1);
    admin
        .request(&Cmd::new("CLIENT").arg("UNPAUSE"))
        .await
        .unwrap();
}

/// A connect attempt whose handshake a dead link swallowed is shared by the
/// callers that need a connection meanwhile, but not beyond their
/// deadlines: once the link is back, the next call opens a new connection at
/// once instead of joining the stuck attempt until the connect timeout (5 s
/// by default, kept here) ends it.
#[tokio::test]
async fn a_stuck_connect_attempt_is_not_shared_past_its_callers_deadlines() {
    let (_server, proxy) = server_and_proxy().await;
    let client = client(&proxy).await;
    client.set("k", "v").await.unwrap();
    // Everything goes silent: the connection in use and every new one.
    proxy.black_hole(true);
    let err = client.get::<Option<String>>("k").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    // This call's connect attempt is swallowed in its handshake.
    let err = client.get::<Option<String>>("k").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert_eq!(err.delivery(), Delivery::NotSent, "{err}");
    // The link comes back; the swallowed connection stays dead for good.
    proxy.black_hole(false);
    let started = Instant::now();
    let got: Option<String> = client
        .get("k")
        .await
        .unwrap_or_else(|e| panic!("the call after the link came back failed: {e}"));
    assert_eq!(got.as_deref(), Some("v"));
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "recovery took {:?}: the stuck attempt was shared",
        started.elapsed()
    );
}
