//! At most once by default: a request whose reply was lost is re-sent only
//! when the command is safe to repeat or the caller opted in. Faults come
//! from the testkit's `FaultProxy` between the client and a real server.

use std::time::{Duration, Instant};

use valkey_client::Commands;
use valkey_client::{
    CallOptions, Cmd, ConstantBackoff, Delivery, ErrorKind, ExponentialBackoff, NoBackoff, Retry,
    RetryBudget, Valkey,
};
use valkey_testkit::{FaultProxy, Server};

mod common;

use common::{server_and_proxy, through};

async fn counter(server: &Server) -> i64 {
    let mut admin = server.connect().await.unwrap();
    let v = admin
        .request(&Cmd::new("GET").arg("counter"))
        .await
        .unwrap();
    v.as_str().map_or(0, |s| s.parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incr_with_a_lost_reply_is_not_resent_by_default() {
    let (server, proxy) = server_and_proxy().await;
    let client = through(&proxy).build().await.unwrap();
    assert_eq!(client.incr("counter").await.unwrap(), 1);

    proxy.cut_after_request("INCR");
    let err = client.incr("counter").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connection, "{err}");
    assert_eq!(err.delivery(), Delivery::SentNoReply);
    assert_eq!(proxy.commands_seen("INCR"), 2, "sent once, never re-sent");
    assert_eq!(counter(&server).await, 2, "applied exactly once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incr_is_resent_when_the_caller_opts_in() {
    let (server, proxy) = server_and_proxy().await;
    let client = through(&proxy).build().await.unwrap();

    // Per call.
    proxy.cut_after_request("INCR");
    let opt_in = CallOptions::new().retry_non_idempotent(true);
    let n: i64 = client
        .request_with(&Cmd::new("INCR").arg("counter"), &opt_in)
        .await
        .unwrap();
    assert_eq!(n, 2, "the lost INCR ran, and so did its repeat");
    assert_eq!(proxy.commands_seen("INCR"), 2);
    assert_eq!(counter(&server).await, 2);

    // Per client.
    let client = through(&proxy)
        .retry_non_idempotent(true)
        .build()
        .await
        .unwrap();
    proxy.cut_after_request("INCR");
    assert_eq!(client.incr("counter").await.unwrap(), 4);
    assert_eq!(counter(&server).await, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn safe_commands_are_resent_after_a_lost_reply() {
    let (server, proxy) = server_and_proxy().await;
    let client = through(&proxy).build().await.unwrap();
    proxy.cut_after_request("SET");
    client.set("k", "v").await.unwrap();
    assert_eq!(proxy.commands_seen("SET"), 2);
    proxy.cut_mid_reply("GET");
    let got: String = client.get("k").await.unwrap();
    assert_eq!(got, "v");
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_cut_before_it_was_sent_is_always_retried() {
    let (server, proxy) = server_and_proxy().await;
    let client = through(&proxy).build().await.unwrap();
    client.incr("counter").await.unwrap();
    // The proxy drops the INCR without forwarding it. The client cannot know
    // the server never saw it, so the INCR is still not re-sent...
    proxy.cut_before_request("INCR");
    let err = client.incr("counter").await.unwrap_err();
    assert_eq!(err.delivery(), Delivery::SentNoReply);
    assert_eq!(counter(&server).await, 1);
    // ...but a connection that cannot even be opened is a rejection that
    // proves nothing ran: with the proxy refusing, then healing, the INCR
    // goes through exactly once.
    proxy.reset_all();
    proxy.refuse_connections(true);
    let heal = async {
        tokio::time::sleep(Duration::from_millis(60)).await;
        proxy.refuse_connections(false);
    };
    let (result, ()) = tokio::join!(client.incr("counter"), heal);
    assert_eq!(result.unwrap(), 2);
    assert_eq!(counter(&server).await, 2);
}

#[tokio::test]
async fn one_deadline_bounds_all_attempts_and_sleeps() {
    let (_server, proxy) = server_and_proxy().await;
    let client = Valkey::builder()
        .host("127.0.0.1")
        .port(proxy.port())
        .retry(Retry::forever(ExponentialBackoff::default()))
        .retry_on_timeout(true)
        .response_timeout(Some(Duration::from_millis(100)))
        .request_timeout(Some(Duration::from_millis(500)))
        .build()
        .await
        .unwrap();
    proxy.black_hole(true);
    let started = Instant::now();
    let err = client.get::<Option<String>>("k").await.unwrap_err();
    let took = started.elapsed();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(
        took < Duration::from_millis(700),
        "retries ran past the deadline: {took:?}"
    );
    assert!(
        took >= Duration::from_millis(200),
        "gave up too early: {took:?}"
    );

    // A per-call deadline overrides the client's.
    let started = Instant::now();
    let short = CallOptions::new().timeout(Duration::from_millis(150));
    let err = client
        .request_with::<Option<String>>(&Cmd::new("GET").arg("k"), &short)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert!(started.elapsed() < Duration::from_millis(350));
}

/// A client through `proxy` that also retries server errors, with a retry
/// budget of `tokens` that never refills; the key `list` holds a list, so a
/// GET of it is answered WRONGTYPE (a read-only command, so retried).
async fn list_and_budgeted_client(proxy: &FaultProxy, retry: Retry, tokens: u32) -> Valkey {
    let client = Valkey::builder()
        .host("127.0.0.1")
        .port(proxy.port())
        .retry(retry)
        .retry_on_error([ErrorKind::Response])
        .retry_budget(Some(RetryBudget {
            capacity: tokens,
            refill_per_second: 0.0,
        }))
        .build()
        .await
        .unwrap();
    client
        .request::<i64>(&Cmd::new("RPUSH").arg("list").arg("x"))
        .await
        .unwrap();
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_retry_budget_stops_retries_that_reach_the_server() {
    let (_server, proxy) = server_and_proxy().await;
    let client = list_and_budgeted_client(&proxy, Retry::new(NoBackoff, 10), 3).await;
    // Each attempt reaches the server and gets a (retried) server error,
    // repeated because GET is read-only: the first retry is free, then 3
    // tokens, then give up.
    let err = client.get::<Option<String>>("list").await.unwrap_err();
    assert_eq!(err.code(), Some("WRONGTYPE"), "{err}");
    assert_eq!(proxy.commands_seen("GET"), 5);
    // The bucket is empty: only the free first retry is left.
    let _ = client.get::<Option<String>>("list").await;
    assert_eq!(proxy.commands_seen("GET"), 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_that_gives_up_on_its_deadline_takes_no_budget() {
    let (_server, proxy) = server_and_proxy().await;
    let retry = Retry::new(ConstantBackoff::new(Duration::from_millis(200)), 10);
    let client = list_and_budgeted_client(&proxy, retry, 1).await;
    // A WRONGTYPE GET, retried because it is read-only. The first retry is
    // free; the second would need the token, but the deadline leaves no
    // room for its 200 ms wait: the call gives up without taking it.
    let short = CallOptions::new().timeout(Duration::from_millis(300));
    let err = client
        .request_with::<Option<String>>(&Cmd::new("GET").arg("list"), &short)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("WRONGTYPE"), "{err}");
    assert_eq!(proxy.commands_seen("GET"), 2);
    // So the token is still there: the free retry, then one on the token.
    let _ = client.get::<Option<String>>("list").await;
    assert_eq!(proxy.commands_seen("GET"), 5);
}
