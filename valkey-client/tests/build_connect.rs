//! `ValkeyBuilder::build()` connects under the client's Retry: a server that
//! comes up 300 ms after the build began is reached; without a Retry the
//! build fails at once with a Connection error; the request timeout bounds
//! the attempts. `build_lazy()` returns at once on a server that is down;
//! its first request fails without a Retry, and succeeds once the server is
//! up (at once, or with a Retry while it comes up).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use valkey_client::Commands;
use valkey_client::{ErrorKind, Event, ExponentialBackoff, Retry, ValkeyBuilder};
use valkey_testkit::{Server, ServerConfig, free_port};

use common::local;

/// Bounds every wait on the client, so a hang fails the test.
const BOUND: Duration = Duration::from_secs(10);

/// How long the server stays down after the client starts.
const DOWN: Duration = Duration::from_millis(300);

/// Counts the client's `Retry` events for `command`.
fn counting_retries(
    builder: ValkeyBuilder,
    command: &'static str,
) -> (ValkeyBuilder, Arc<AtomicUsize>) {
    let retries = Arc::new(AtomicUsize::new(0));
    let seen = retries.clone();
    let builder = builder.on_event(move |event| {
        if let Event::Retry { command: c, .. } = event
            && *c == command
        {
            seen.fetch_add(1, Ordering::Relaxed);
        }
    });
    (builder, retries)
}

async fn start_on(port: u16) -> Server {
    Server::start(ServerConfig::new().port(port))
        .await
        .expect("start the server on the chosen port")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn build_waits_for_a_server_that_comes_up_under_its_retry() {
    let port = free_port();
    let retry = Retry::new(ExponentialBackoff::default(), 8);
    let (builder, retries) = counting_retries(local(port).retry(retry), "CONNECT");
    let started = Instant::now();
    let build = tokio::spawn(builder.build());
    tokio::time::sleep(DOWN).await;
    // Kept in a variable: dropped (killed) when the test ends, pass or fail.
    let _server = start_on(port).await;
    let client = tokio::time::timeout(BOUND, build)
        .await
        .expect("build did not finish")
        .unwrap()
        .expect("build under a Retry failed although the server came up");
    assert!(started.elapsed() >= DOWN);
    assert!(
        retries.load(Ordering::Relaxed) >= 1,
        "the connect was never retried"
    );
    client.set("k", "v").await.unwrap();
    let got: Option<String> = client.get("k").await.unwrap();
    assert_eq!(got.as_deref(), Some("v"));
}

#[tokio::test]
async fn build_without_retry_fails_at_once() {
    let port = free_port();
    let started = Instant::now();
    let err = tokio::time::timeout(BOUND, local(port).build())
        .await
        .expect("build did not finish")
        .expect_err("build succeeded with no server");
    let took = started.elapsed();
    assert_eq!(err.kind(), ErrorKind::Connection, "{err}");
    assert!(took < Duration::from_millis(150), "failing took {took:?}");
}

#[tokio::test]
async fn the_request_timeout_bounds_the_build() {
    let port = free_port();
    // Retries enough for many seconds; the request timeout stops them.
    let retry = Retry::new(ExponentialBackoff::default(), 100);
    let builder = local(port)
        .retry(retry)
        .request_timeout(Some(Duration::from_millis(400)));
    let started = Instant::now();
    let err = tokio::time::timeout(BOUND, builder.build())
        .await
        .expect("build did not finish")
        .expect_err("build succeeded with no server");
    let took = started.elapsed();
    assert_eq!(err.kind(), ErrorKind::Connection, "{err}");
    assert!(took < Duration::from_millis(1000), "gave up after {took:?}");
}

#[tokio::test]
async fn build_lazy_returns_at_once_and_connects_on_first_use() {
    let port = free_port();
    let started = Instant::now();
    let client = local(port).build_lazy();
    assert!(started.elapsed() < Duration::from_millis(50));
    // Nothing listens and nothing retries: the first request fails.
    let err = tokio::time::timeout(BOUND, client.ping())
        .await
        .expect("ping did not finish")
        .expect_err("ping succeeded with no server");
    assert_eq!(err.kind(), ErrorKind::Connection, "{err}");
    // Once the server is up, the same client connects on demand.
    let _server = start_on(port).await;
    tokio::time::timeout(BOUND, client.ping())
        .await
        .expect("ping did not finish")
        .expect("ping failed with the server up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn build_lazy_with_retry_serves_a_request_once_the_server_comes_up() {
    let port = free_port();
    let retry = Retry::new(ExponentialBackoff::default(), 8);
    let started = Instant::now();
    let client = local(port).retry(retry).build_lazy();
    assert!(started.elapsed() < Duration::from_millis(50));
    let first = tokio::spawn({
        let client = client.clone();
        async move { client.set("k", "v").await }
    });
    tokio::time::sleep(DOWN).await;
    let _server = start_on(port).await;
    tokio::time::timeout(BOUND, first)
        .await
        .expect("the first request did not finish")
        .unwrap()
        .expect("the first request failed although the server came up");
    let got: Option<String> = client.get("k").await.unwrap();
    assert_eq!(got.as_deref(), Some("v"));
}
