//! The `Valkey` client's documented retry behaviour against real
//! valkey-server processes with real faults: kills, restarts, `CLIENT KILL`,
//! `DEBUG SLEEP`, and a server loading its dataset.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use valkey_client::Commands;
use valkey_client::{Cmd, ErrorKind, Event, ExponentialBackoff, Retry, Valkey, ValkeyBuilder};
mod common;

use valkey_testkit::{Server, ServerConfig};

/// One reported event: its name and the kind of its error, if any.
type Entry = (String, Option<ErrorKind>);

/// What the client reported.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Entry>>>);

impl Recorder {
    fn attach(&self, builder: ValkeyBuilder) -> ValkeyBuilder {
        let log = self.0.clone();
        builder.on_event(move |event| {
            let entry = match event {
                Event::Retry { error, .. } => ("retry".to_string(), Some(error.kind())),
                Event::GaveUp { reason, error, .. } => {
                    (format!("gave-up:{reason:?}"), Some(error.kind()))
                }
                Event::Reconnecting { error, .. } => {
                    ("reconnecting".to_string(), Some(error.kind()))
                }
                Event::Reconnected { .. } => ("reconnected".to_string(), None),
                _ => ("other".to_string(), None),
            };
            log.lock().unwrap().push(entry);
        })
    }

    fn count(&self, name: &str, kind: Option<ErrorKind>) -> usize {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|(n, k)| n == name && (kind.is_none() || *k == kind))
            .count()
    }
}

fn builder(server: &Server) -> ValkeyBuilder {
    Valkey::builder().host("127.0.0.1").port(server.port())
}

use common::patient_retry;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_survive_a_kill_and_restart_with_retry() {
    // Each GET must see the SET before it, across the kill.
    let mut server = common::durable_server().await;
    let events = Recorder::default();
    let client = events
        .attach(builder(&server).retry(patient_retry()))
        .build()
        .await
        .unwrap();
    let worker = {
        let client = client.clone();
        tokio::spawn(async move {
            for i in 0..400u32 {
                let key = format!("k{}", i % 10);
                client
                    .set(&key, i)
                    .await
                    .unwrap_or_else(|e| panic!("SET {i}: {e}"));
                let got: u32 = client
                    .get(&key)
                    .await
                    .unwrap_or_else(|e| panic!("GET {i}: {e}"));
                assert_eq!(got, i);
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    common::bounce_under_load(&mut server).await;
    worker.await.unwrap();
    assert!(
        events.count("retry", Some(ErrorKind::Connection)) > 0,
        "no retry seen"
    );
    assert!(events.count("reconnected", None) > 0);
}

#[tokio::test]
async fn without_retry_the_error_is_a_connection_error() {
    let mut server = Server::start(ServerConfig::new()).await.unwrap();
    let events = Recorder::default();
    let client = events.attach(builder(&server)).build().await.unwrap();
    client.set("k", "v").await.unwrap();
    assert!(client.effective_retry().is_none());
    server.kill();
    let err = client.get::<Option<String>>("k").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connection, "{err}");
    assert_eq!(
        events.count("gave-up:NotRetried", Some(ErrorKind::Connection)),
        1
    );
    assert_eq!(events.count("retry", None), 0);
    // Still down: opening a connection fails, also a Connection error.
    let err = client.get::<Option<String>>("k").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connection, "{err}");
    // Back up: the next command reconnects by itself.
    server.restart().await.unwrap();
    client.set("k", "again").await.unwrap();
}

#[tokio::test]
async fn client_kill_of_our_connection_is_survived() {
    let server = Server::start(ServerConfig::new()).await.unwrap();
    let events = Recorder::default();
    let client = events
        .attach(builder(&server).retry(patient_retry()))
        .build()
        .await
        .unwrap();
    client.set("k", "before").await.unwrap();
    let id: i64 = client.request(&Cmd::new("CLIENT").arg("ID")).await.unwrap();
    let mut admin = server.connect().await.unwrap();
    let killed = admin
        .request(&Cmd::new("CLIENT").arg("KILL").arg("ID").arg(id))
        .await
        .unwrap();
    assert_eq!(killed.as_int(), Some(1));
    let got: String = client.get("k").await.unwrap();
    assert_eq!(got, "before");
    let new_id: i64 = client.request(&Cmd::new("CLIENT").arg("ID")).await.unwrap();
    assert_ne!(new_id, id, "a new connection was opened");
}

#[tokio::test]
async fn debug_sleep_longer_than_the_response_timeout() {
    let server = Server::start(ServerConfig::new()).await.unwrap();
    let timeout = Some(Duration::from_millis(200));
    let mut admin = server.connect().await.unwrap();

    // Without retry_on_timeout: a Timeout error.
    let events = Recorder::default();
    let plain = events
        .attach(builder(&server).response_timeout(timeout))
        .build()
        .await
        .unwrap();
    plain.set("k", "v").await.unwrap();
    let sleeper = tokio::spawn(async move {
        admin
            .request(&Cmd::new("DEBUG").arg("SLEEP").arg("0.6"))
            .await
            .unwrap();
        admin
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let err = plain.get::<String>("k").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    let mut admin = sleeper.await.unwrap();

    // With retry_on_timeout: the GET (safe to repeat) is retried and succeeds
    // once the server wakes up.
    let events = Recorder::default();
    let retrying = events
        .attach(
            builder(&server)
                .response_timeout(timeout)
                .retry(Retry::new(ExponentialBackoff::default(), 5))
                .retry_on_timeout(true),
        )
        .build()
        .await
        .unwrap();
    let sleeper = tokio::spawn(async move {
        admin
            .request(&Cmd::new("DEBUG").arg("SLEEP").arg("0.6"))
            .await
            .unwrap();
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let got: String = retrying.get("k").await.unwrap();
    assert_eq!(got, "v");
    assert!(events.count("retry", Some(ErrorKind::Timeout)) >= 1);
    sleeper.await.unwrap();
}

#[tokio::test]
async fn retry_on_timeout_alone_retries_once_without_backoff() {
    let server = Server::start(ServerConfig::new()).await.unwrap();
    let client = builder(&server)
        .retry_on_timeout(true)
        .build()
        .await
        .unwrap();
    let retry = client.effective_retry().unwrap();
    assert_eq!(retry.retries(), Some(1));
    assert_eq!(retry.supported_errors(), [ErrorKind::Timeout]);
    let client = builder(&server)
        .retry_on_error([ErrorKind::BusyLoading])
        .build()
        .await
        .unwrap();
    assert_eq!(
        client.effective_retry().unwrap().supported_errors(),
        [ErrorKind::BusyLoading]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loading_dataset_is_retried_as_busy_loading() {
    // A dataset that takes about a second to load: few keys, each loaded
    // slowly (`key-load-delay`, in microseconds), with the server answering
    // clients between keys.
    let mut server = Server::start(
        ServerConfig::new()
            .config("key-load-delay", "100")
            .config("loading-process-events-interval-bytes", "1024"),
    )
    .await
    .unwrap();
    let mut admin = server.connect().await.unwrap();
    admin
        .request(
            &Cmd::new("DEBUG")
                .arg("POPULATE")
                .arg(10_000)
                .arg("pop")
                .arg(64),
        )
        .await
        .unwrap();
    admin
        .request(&Cmd::new("SET").arg("marker").arg("loaded"))
        .await
        .unwrap();
    admin.request(&Cmd::new("SAVE")).await.unwrap();
    drop(admin);

    let events = Recorder::default();
    let client = events
        .attach(builder(&server).retry(Retry::forever(ExponentialBackoff::default())))
        .build()
        .await
        .unwrap();
    let port = server.port();
    let reader = tokio::spawn(async move {
        // Wait for the server to go away, then read through its loading.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let got: String = client.get("marker").await.unwrap();
        got
    });
    server.restart().await.unwrap();
    assert_eq!(reader.await.unwrap(), "loaded");
    assert!(
        events.count("retry", Some(ErrorKind::BusyLoading)) > 0,
        "the client never saw LOADING on port {port}"
    );
}

#[tokio::test]
async fn give_up_reasons_are_reported() {
    let server = Server::start(ServerConfig::new()).await.unwrap();
    let events = Recorder::default();
    let client = events
        .attach(builder(&server).retry(patient_retry()))
        .build()
        .await
        .unwrap();
    // A server error reply is not retried unless its kind is listed.
    let err = client
        .request::<i64>(&Cmd::new("INCR").arg("a").arg("b"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Response);
    assert_eq!(
        events.count("gave-up:NotRetried", Some(ErrorKind::Response)),
        1
    );
    assert_eq!(events.count("retry", None), 0);
}
