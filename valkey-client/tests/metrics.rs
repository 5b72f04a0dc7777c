//! The `metrics` feature against real servers: calls, errors by kind,
//! retries, reconnects, calls in flight and the latency histogram, read
//! from the `metrics` facade's recorder after a reconnect and a retry; and
//! a cluster redirection.
#![cfg(feature = "metrics")]

use std::collections::HashMap;
use std::time::Duration;

use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use valkey_client::cluster::key_slot;
use valkey_client::{Cmd, Commands, ExponentialBackoff, Retry, Valkey, metrics as names};
use valkey_testkit::{Server, ServerConfig};

mod common;

/// A metric's identity: its name and its labels, sorted.
type Id = (String, Vec<(String, String)>);

/// What the recorder saw so far. The debugging recorder's snapshots drain
/// it (counters, gauges and histograms restart from zero), so every
/// snapshot is added up here.
struct Seen {
    snapshotter: Snapshotter,
    counters: HashMap<Id, u64>,
    gauges: HashMap<Id, f64>,
    histograms: HashMap<Id, Vec<f64>>,
}

impl Seen {
    fn new(snapshotter: Snapshotter) -> Seen {
        Seen {
            snapshotter,
            counters: HashMap::new(),
            gauges: HashMap::new(),
            histograms: HashMap::new(),
        }
    }

    fn refresh(&mut self) {
        for (key, _, _, value) in self.snapshotter.snapshot().into_vec() {
            let key = key.key();
            let mut labels: Vec<_> = key
                .labels()
                .map(|l| (l.key().to_string(), l.value().to_string()))
                .collect();
            labels.sort();
            let id = (key.name().to_string(), labels);
            match value {
                DebugValue::Counter(n) => *self.counters.entry(id).or_default() += n,
                DebugValue::Gauge(n) => *self.gauges.entry(id).or_default() += n.into_inner(),
                DebugValue::Histogram(samples) => self
                    .histograms
                    .entry(id)
                    .or_default()
                    .extend(samples.iter().map(|s| s.into_inner())),
            }
        }
    }

    fn id(name: &str, labels: &[(&str, &str)]) -> Id {
        let mut labels: Vec<_> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        labels.sort();
        (name.to_string(), labels)
    }

    fn counter(&mut self, name: &str, labels: &[(&str, &str)]) -> u64 {
        self.refresh();
        self.counters
            .get(&Seen::id(name, labels))
            .copied()
            .unwrap_or(0)
    }

    fn gauge(&mut self, name: &str) -> Option<f64> {
        self.refresh();
        self.gauges.get(&Seen::id(name, &[])).copied()
    }

    fn histogram(&mut self, name: &str, labels: &[(&str, &str)]) -> Vec<f64> {
        self.refresh();
        self.histograms
            .get(&Seen::id(name, labels))
            .cloned()
            .unwrap_or_default()
    }
}

// One test in this binary: the recorder is global (the client's
// connection tasks report from their own tasks).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_after_a_reconnect_and_a_retry() {
    let recorder = DebuggingRecorder::new();
    let mut seen = Seen::new(recorder.snapshotter());
    recorder
        .install()
        .expect("the only recorder of this binary");

    let server = Server::start(ServerConfig::new()).await.unwrap();
    let addr = format!("127.0.0.1:{}", server.port());
    let client = Valkey::builder()
        .host("127.0.0.1")
        .port(server.port())
        .response_timeout(Some(Duration::from_millis(200)))
        .retry(Retry::new(ExponentialBackoff::default(), 3))
        .retry_on_timeout(true)
        .build()
        .await
        .unwrap();
    client.set("k", "v").await.unwrap();
    assert_eq!(seen.counter(names::RECONNECTS, &[("server", &addr)]), 0);

    // A reconnect: our connection killed, the next call opens another.
    let mut admin = server.connect().await.unwrap();
    let id: i64 = client.request(&Cmd::new("CLIENT").arg("ID")).await.unwrap();
    admin
        .request(&Cmd::new("CLIENT").arg("KILL").arg("ID").arg(id))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let got: String = client.get("k").await.unwrap();
    assert_eq!(got, "v");
    assert_eq!(seen.counter(names::RECONNECTS, &[("server", &addr)]), 1);
    assert_eq!(seen.counter(names::RETRIES, &[("command", "get")]), 0);

    // A retry: the server sleeps past the response timeout; the GET's
    // retry runs on a fresh connection (a second reconnect).
    let sleeper = common::debug_sleep(&server, 0.35).await;
    let got: String = client.get("k").await.unwrap();
    assert_eq!(got, "v");
    sleeper.await.unwrap();
    assert_eq!(seen.counter(names::RETRIES, &[("command", "get")]), 1);
    assert_eq!(seen.counter(names::RECONNECTS, &[("server", &addr)]), 2);

    // An error reply, counted by kind.
    client.hset("h", ("f", 1)).await.unwrap();
    let err = client.incr("h").await.unwrap_err();
    assert_eq!(err.code(), Some("WRONGTYPE"));

    assert_eq!(seen.counter(names::CALLS, &[("command", "get")]), 2);
    assert_eq!(seen.counter(names::CALLS, &[("command", "set")]), 1);
    assert_eq!(seen.counter(names::CALLS, &[("command", "incr")]), 1);
    let incr_errors = [("command", "incr"), ("kind", "Response")];
    assert_eq!(seen.counter(names::ERRORS, &incr_errors), 1);
    assert_eq!(
        seen.counter(names::ERRORS, &[("command", "get"), ("kind", "Timeout")]),
        0,
        "the retried GET succeeded"
    );
    assert_eq!(seen.gauge(names::IN_FLIGHT), Some(0.0));
    let durations = seen.histogram(names::CALL_DURATION, &[("command", "get")]);
    assert_eq!(durations.len(), 2);
    // The retried GET waited out the 200 ms response timeout.
    assert!(durations.iter().any(|&s| s >= 0.2), "{durations:?}");

    // A redirection: a cluster's slot moves behind the client's back, the
    // next command on it is answered MOVED and followed.
    let (cluster, rc) = common::cluster::three_primaries().await;
    let key = (0..)
        .map(|i| format!("moving:{i}"))
        .find(|k| cluster.slot_owner(key_slot(k.as_bytes())) == cluster.node(0).port())
        .unwrap();
    let slot = key_slot(key.as_bytes());
    rc.set(&key, "here").await.unwrap();
    cluster
        .migrate_slots_legacy(slot..=slot, 0, 1, Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(seen.counter(names::REDIRECTIONS, &[("type", "moved")]), 0);
    let got: String = rc.get(&key).await.unwrap();
    assert_eq!(got, "here");
    assert_eq!(seen.counter(names::REDIRECTIONS, &[("type", "moved")]), 1);
}
