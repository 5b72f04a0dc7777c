//! Server error replies and the retry: only a refusal that proves the
//! command did not run (LOADING, BUSY, NOSCRIPT, ...) is sent again as such.
//! Any other error reply may come from a command that ran in part, such as
//! a script that wrote and then failed: it is retried only when the command
//! is safe to repeat or the caller opted in. Against real servers.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use valkey_client::Commands;
use valkey_client::{
    CallOptions, Cmd, ConstantBackoff, Delivery, ErrorKind, Event, ExponentialBackoff, Pipeline,
    Retry, Valkey, ValkeyBuilder, Value,
};
use valkey_testkit::{Server, ServerConfig};

/// Writes, then fails: the write stays.
const INCR_THEN_FAIL: &str = "redis.call('INCR', KEYS[1]); return redis.error_reply('boom')";

/// The retries and give-ups the client reported, as `retry:CODE` and
/// `gave-up:REASON:ATTEMPTS`.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<String>>>);

impl Recorder {
    fn attach(&self, builder: ValkeyBuilder) -> ValkeyBuilder {
        let log = self.0.clone();
        builder.on_event(move |event| {
            let entry = match event {
                Event::Retry { error, .. } => format!("retry:{}", error.code().unwrap_or("-")),
                Event::GaveUp {
                    reason, attempts, ..
                } => format!("gave-up:{reason:?}:{attempts}"),
                _ => return,
            };
            log.lock().unwrap().push(entry);
        })
    }

    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

/// A client with 3 retries that also retries server error replies.
async fn client(server: &Server, events: &Recorder) -> Valkey {
    events
        .attach(
            Valkey::builder()
                .host("127.0.0.1")
                .port(server.port())
                .retry(Retry::new(ExponentialBackoff::default(), 3))
                .retry_on_error([ErrorKind::Response]),
        )
        .build()
        .await
        .unwrap()
}

fn incr_then_fail() -> Cmd {
    Cmd::new("EVAL").arg(INCR_THEN_FAIL).arg(1).arg("counter")
}

async fn counter(client: &Valkey) -> Option<i64> {
    client.get("counter").await.unwrap()
}

#[tokio::test]
async fn a_failing_script_that_wrote_runs_once() {
    let server = Server::start(ServerConfig::new()).await.unwrap();
    let events = Recorder::default();
    let client = client(&server, &events).await;

    let err = client
        .request::<Value>(&incr_then_fail())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Response, "{err}");
    assert_eq!(err.delivery(), Delivery::Replied);
    assert_eq!(err.message(), "boom");
    assert_eq!(counter(&client).await, Some(1), "the script ran once");
    assert_eq!(events.take(), ["gave-up:MayHaveRun:1"]);

    // Opting in accepts running it again: 1 + 3 retries.
    client.del(["counter"]).await.unwrap();
    let opt_in = CallOptions::new().retry_non_idempotent(true);
    let err = client
        .request_with::<Value>(&incr_then_fail(), &opt_in)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Response);
    assert_eq!(counter(&client).await, Some(4), "the script ran 4 times");
    let seen = events.take();
    assert_eq!(seen.len(), 4, "{seen:?}");
    assert_eq!(seen[3], "gave-up:RetriesExhausted:4");
}

#[tokio::test]
async fn a_failing_script_in_a_pipeline_runs_once() {
    let server = Server::start(ServerConfig::new()).await.unwrap();
    let events = Recorder::default();
    let client = client(&server, &events).await;

    // The script last, so that no later reply holds the retry back.
    let mut pipe = Pipeline::new();
    pipe.cmd("INCR").arg("before");
    pipe.cmd("EVAL").arg(INCR_THEN_FAIL).arg(1).arg("counter");
    let results = client.pipeline(&mut pipe).await.unwrap();
    assert_eq!(results[0].as_ref().unwrap().as_int(), Some(1));
    let err = results[1].as_ref().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Response, "{err}");
    assert_eq!(err.message(), "boom");
    assert_eq!(counter(&client).await, Some(1), "the script ran once");

    // Even opted in: in a pipeline an error reply that is not a refusal is
    // the command's answer, kept like any other.
    let opt_in = CallOptions::new().retry_non_idempotent(true);
    let mut pipe = Pipeline::new();
    pipe.cmd("EVAL").arg(INCR_THEN_FAIL).arg(1).arg("counter");
    let results = client.pipeline_with(&mut pipe, &opt_in).await.unwrap();
    assert_eq!(results[0].as_ref().unwrap_err().message(), "boom");
    assert_eq!(counter(&client).await, Some(2));
    assert_eq!(events.take(), Vec::<String>::new(), "nothing retried");
}

#[tokio::test]
async fn an_error_reply_to_a_read_is_retried_and_returned() {
    let server = Server::start(ServerConfig::new()).await.unwrap();
    let events = Recorder::default();
    let client = client(&server, &events).await;
    client
        .request::<i64>(&Cmd::new("RPUSH").arg("list").arg("x"))
        .await
        .unwrap();
    events.take();

    // GET is read-only, so repeating it is harmless: with Response retried,
    // it is sent 1 + 3 times, and the last WRONGTYPE is returned.
    let err = client.get::<Option<String>>("list").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Response, "{err}");
    assert_eq!(err.code(), Some("WRONGTYPE"));
    assert_eq!(
        events.take(),
        [
            "retry:WRONGTYPE",
            "retry:WRONGTYPE",
            "retry:WRONGTYPE",
            "gave-up:RetriesExhausted:4"
        ]
    );
    // The connection is still fine.
    client.ping().await.unwrap();
}

#[tokio::test]
async fn a_refusal_before_running_is_retried_for_any_command() {
    let server = Server::start(ServerConfig::new()).await.unwrap();
    let events = Recorder::default();
    let client = client(&server, &events).await;

    // EVALSHA is not safe to repeat, but NOSCRIPT proves it did not run.
    let sha = "0".repeat(40);
    let err = client
        .request::<Value>(&Cmd::new("EVALSHA").arg(&sha).arg(0))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NoScript, "{err}");
    assert_eq!(
        events.take(),
        [
            "retry:NOSCRIPT",
            "retry:NOSCRIPT",
            "retry:NOSCRIPT",
            "gave-up:RetriesExhausted:4"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_is_retried_until_the_running_script_ends() {
    // BUSY once a script has run for 50 ms.
    let server = Server::start(ServerConfig::new().config("busy-reply-threshold", "50"))
        .await
        .unwrap();
    let events = Recorder::default();
    let client = events
        .attach(
            Valkey::builder()
                .host("127.0.0.1")
                .port(server.port())
                .retry(Retry::new(
                    ConstantBackoff::new(Duration::from_millis(50)),
                    40,
                ))
                .retry_on_error([ErrorKind::Response]),
        )
        .build()
        .await
        .unwrap();
    client.ping().await.unwrap();

    let mut other = server.connect().await.unwrap();
    let busy = tokio::spawn(async move {
        // Spins for 500 ms of server time.
        let spin = "local t = redis.call('TIME'); \
                    local start = t[1] * 1000000 + t[2]; \
                    repeat t = redis.call('TIME') \
                    until t[1] * 1000000 + t[2] - start >= 500000; \
                    return 1";
        other
            .request(&Cmd::new("EVAL").arg(spin).arg(0))
            .await
            .unwrap();
    });
    tokio::time::sleep(Duration::from_millis(150)).await;
    let n: i64 = client
        .request(
            &Cmd::new("EVAL")
                .arg("return redis.call('INCR', KEYS[1])")
                .arg(1)
                .arg("counter"),
        )
        .await
        .unwrap();
    busy.await.unwrap();
    assert_eq!(n, 1, "ran once, after the other script");
    assert_eq!(counter(&client).await, Some(1));
    let seen = events.take();
    assert!(
        !seen.is_empty() && seen.iter().all(|e| e == "retry:BUSY"),
        "{seen:?}"
    );
}
