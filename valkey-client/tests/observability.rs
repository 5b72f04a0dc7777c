//! What a call tells `tracing`: one span per call with OpenTelemetry's
//! database attributes, the retry machinery's events inside it, server
//! error replies kept below WARN, and never an argument value.
//!
//! Each test installs a collecting subscriber for its own thread and runs
//! on a current-thread runtime, so everything the client does (its
//! connection tasks included) is seen by that subscriber alone.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use valkey_client::{Commands, ExponentialBackoff, Pipeline, Retry, Valkey, cluster};
use valkey_testkit::{Server, ServerConfig};

mod common;

const SECRET_KEY: &str = "observability-secret-key";
const SECRET_VALUE: &str = "observability-secret-value";

/// A span as recorded: its name, target and fields (values as text).
#[derive(Debug, Clone, Default)]
struct SpanRecord {
    name: String,
    target: String,
    fields: BTreeMap<String, String>,
}

/// An event as recorded: its level, fields, and the call span it is in.
#[derive(Debug, Clone)]
struct EventRecord {
    level: Level,
    fields: BTreeMap<String, String>,
    /// The `valkey.call` span it happened in, if any (by id).
    call_span: Option<u64>,
}

#[derive(Default)]
struct Log {
    spans: BTreeMap<u64, SpanRecord>,
    events: Vec<EventRecord>,
}

#[derive(Clone, Default)]
struct Collector(Arc<Mutex<Log>>);

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        self.0.insert(
            field.name().to_string(),
            format!("{value:?}").replace('"', ""),
        );
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_string(), value.to_string());
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Collector {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, _: Context<'_, S>) {
        let mut record = SpanRecord {
            name: attrs.metadata().name().to_string(),
            target: attrs.metadata().target().to_string(),
            ..Default::default()
        };
        attrs.record(&mut Fields(&mut record.fields));
        self.0.lock().unwrap().spans.insert(id.into_u64(), record);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _: Context<'_, S>) {
        let mut log = self.0.lock().unwrap();
        if let Some(span) = log.spans.get_mut(&id.into_u64()) {
            values.record(&mut Fields(&mut span.fields));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        let call_span = ctx.event_scope(event).and_then(|scope| {
            scope
                .into_iter()
                .find(|span| span.name() == "valkey.call")
                .map(|span| span.id().into_u64())
        });
        self.0.lock().unwrap().events.push(EventRecord {
            level: *event.metadata().level(),
            fields,
            call_span,
        });
    }
}

impl Collector {
    /// Installs the collector for this thread until the guard drops.
    fn install(&self) -> tracing::subscriber::DefaultGuard {
        let subscriber = tracing_subscriber::registry().with(self.clone());
        tracing::subscriber::set_default(subscriber)
    }

    /// The call spans, in creation order.
    fn calls(&self) -> Vec<(u64, SpanRecord)> {
        let log = self.0.lock().unwrap();
        log.spans
            .iter()
            .filter(|(_, s)| s.name == "valkey.call")
            .map(|(id, s)| (*id, s.clone()))
            .collect()
    }

    fn events(&self) -> Vec<EventRecord> {
        self.0.lock().unwrap().events.clone()
    }

    /// The events with this message.
    fn events_named(&self, message: &str) -> Vec<EventRecord> {
        let events = self.events().into_iter();
        events
            .filter(|e| e.fields.get("message").map(String::as_str) == Some(message))
            .collect()
    }

    /// Every recorded text, to look for argument values in.
    fn everything(&self) -> String {
        let log = self.0.lock().unwrap();
        let spans = log.spans.values().map(|s| format!("{s:?}"));
        let events = log.events.iter().map(|e| format!("{:?}", e.fields));
        spans.chain(events).collect::<Vec<_>>().join("\n")
    }
}

fn the_call(collector: &Collector, operation: &str) -> (u64, SpanRecord) {
    let calls: Vec<_> = collector
        .calls()
        .into_iter()
        .filter(|(_, s)| s.fields.get("db.operation.name").map(String::as_str) == Some(operation))
        .collect();
    assert_eq!(
        calls.len(),
        1,
        "one span for the {operation} call: {calls:#?}"
    );
    calls.into_iter().next().unwrap()
}

#[tokio::test]
async fn a_call_retried_once_is_one_span_with_one_retry_event_and_no_argument_values() {
    let server = Server::start(ServerConfig::new()).await.unwrap();
    let client = Valkey::builder()
        .host("127.0.0.1")
        .port(server.port())
        .db(3)
        .response_timeout(Some(Duration::from_millis(200)))
        .retry(Retry::new(ExponentialBackoff::default(), 3))
        .retry_on_timeout(true)
        .build()
        .await
        .unwrap();
    client.set(SECRET_KEY, SECRET_VALUE).await.unwrap();

    // The server sleeps 350 ms: the GET's first attempt times out at
    // 200 ms, its retry gets the reply once the server wakes.
    let sleeper = common::debug_sleep(&server, 0.35).await;

    let collector = Collector::default();
    let guard = collector.install();
    let got: String = client.get(SECRET_KEY).await.unwrap();
    drop(guard);
    assert_eq!(got, SECRET_VALUE);
    sleeper.await.unwrap();

    let (id, span) = the_call(&collector, "GET");
    assert_eq!(span.target, "valkey_client::call");
    let field = |name: &str| span.fields.get(name).map(String::as_str);
    assert_eq!(field("db.system.name"), Some("valkey"));
    assert_eq!(field("db.operation.name"), Some("GET"));
    assert_eq!(field("server.address"), Some("127.0.0.1"));
    assert_eq!(
        field("server.port"),
        Some(server.port().to_string().as_str())
    );
    assert_eq!(field("db.namespace"), Some("3"));
    assert_eq!(field("otel.kind"), Some("client"));
    assert_eq!(field("error.type"), None, "the call succeeded");

    let retries = collector.events_named("retrying command");
    assert_eq!(retries.len(), 1, "{retries:#?}");
    assert_eq!(
        retries[0].call_span,
        Some(id),
        "the retry is inside the call's span"
    );
    assert_eq!(
        retries[0].fields.get("kind").map(String::as_str),
        Some("Timeout")
    );

    let everything = collector.everything();
    assert!(!everything.contains(SECRET_KEY), "{everything}");
    assert!(!everything.contains(SECRET_VALUE), "{everything}");
}

#[tokio::test]
async fn a_call_without_deadline_retried_once_is_one_span_with_its_retry_inside() {
    // No timeout anywhere: the typed call's first attempt is its named
    // future, the retry the general path; both under one span.
    let (server, proxy) = common::server_and_proxy().await;
    let client = common::through(&proxy).db(2).build().await.unwrap();
    client.set(SECRET_KEY, SECRET_VALUE).await.unwrap();
    proxy.cut_after_request("GET");

    let collector = Collector::default();
    let guard = collector.install();
    let got: String = client.get(SECRET_KEY).await.unwrap();
    drop(guard);
    assert_eq!(got, SECRET_VALUE);
    assert_eq!(proxy.faults_triggered(), 1);

    let (id, span) = the_call(&collector, "GET");
    let field = |name: &str| span.fields.get(name).map(String::as_str);
    assert_eq!(
        field("server.port"),
        Some(proxy.port().to_string().as_str())
    );
    assert_eq!(field("db.namespace"), Some("2"));
    assert_eq!(field("error.type"), None, "the call succeeded");
    let retries = collector.events_named("retrying command");
    assert_eq!(retries.len(), 1, "{retries:#?}");
    assert_eq!(retries[0].call_span, Some(id));
    assert_eq!(
        retries[0].fields.get("kind").map(String::as_str),
        Some("Connection")
    );
    let everything = collector.everything();
    assert!(!everything.contains(SECRET_KEY) && !everything.contains(SECRET_VALUE));
    drop(server);
}

#[tokio::test]
async fn an_error_reply_is_recorded_on_the_span_and_logged_below_warn() {
    let mut server = Server::start(ServerConfig::new()).await.unwrap();
    let client = Valkey::builder()
        .host("127.0.0.1")
        .port(server.port())
        .retry(Retry::new(ExponentialBackoff::default(), 3))
        .build()
        .await
        .unwrap();
    client
        .hset(SECRET_KEY, ("field", SECRET_VALUE))
        .await
        .unwrap();

    let collector = Collector::default();
    let guard = collector.install();
    let err = client.incr(SECRET_KEY).await.unwrap_err();
    // A lost connection with retries spent is worth a warning.
    server.stop().await.unwrap();
    let lost = client.get::<String>("other").await.unwrap_err();
    drop(guard);
    assert_eq!(err.code(), Some("WRONGTYPE"));
    assert!(lost.is_connection(), "{lost}");

    let (incr, span) = the_call(&collector, "INCR");
    let field = |name: &str| span.fields.get(name).map(String::as_str);
    assert_eq!(field("error.type"), Some("Response"));
    assert_eq!(field("db.response.status_code"), Some("WRONGTYPE"));
    assert_eq!(field("otel.status_code"), Some("ERROR"));
    let (get, span) = the_call(&collector, "GET");
    assert_eq!(
        span.fields.get("error.type").map(String::as_str),
        Some("Connection")
    );

    let events = collector.events();
    let in_call = |id| events.iter().filter(move |e| e.call_span == Some(id));
    assert!(in_call(incr).all(|e| e.level > Level::WARN), "{events:#?}");
    assert!(
        in_call(incr).any(|e| e.level == Level::DEBUG),
        "the failure is still told"
    );
    assert!(in_call(get).any(|e| e.level == Level::WARN), "{events:#?}");
    let everything = collector.everything();
    assert!(!everything.contains(SECRET_KEY) && !everything.contains(SECRET_VALUE));
}

#[tokio::test]
async fn a_pipeline_and_a_transaction_are_one_span_each() {
    let server = Server::start(ServerConfig::new()).await.unwrap();
    let client = Valkey::connect("127.0.0.1", server.port()).await.unwrap();
    let collector = Collector::default();
    let guard = collector.install();
    let mut pipe = Pipeline::new();
    pipe.cmd("SET").arg(SECRET_KEY).arg(1);
    pipe.cmd("INCR").arg(SECRET_KEY);
    pipe.cmd("GET").arg(SECRET_KEY);
    client.pipeline(&mut pipe).await.unwrap();
    let mut tx = Pipeline::new();
    tx.cmd("MULTI");
    tx.cmd("INCR").arg(SECRET_KEY);
    tx.cmd("EXEC");
    client.pipeline(&mut tx).await.unwrap();
    drop(guard);

    assert_eq!(collector.calls().len(), 2, "{:#?}", collector.calls());
    let (_, pipeline) = the_call(&collector, "PIPELINE");
    assert_eq!(
        pipeline
            .fields
            .get("db.operation.batch.size")
            .map(String::as_str),
        Some("3")
    );
    let (_, multi) = the_call(&collector, "MULTI");
    assert_eq!(
        multi
            .fields
            .get("db.operation.batch.size")
            .map(String::as_str),
        Some("3")
    );
    assert!(!collector.everything().contains(SECRET_KEY));
}

#[tokio::test]
async fn a_cluster_call_records_the_node_it_ran_on() {
    let (cluster, client) = common::cluster::three_primaries().await;
    let owner = cluster.slot_owner(cluster::key_slot(SECRET_KEY.as_bytes()));

    let collector = Collector::default();
    let guard = collector.install();
    client.set(SECRET_KEY, SECRET_VALUE).await.unwrap();
    drop(guard);

    let (_, span) = the_call(&collector, "SET");
    assert_eq!(span.fields.get("server.port"), Some(&owner.to_string()));
    assert_eq!(
        span.fields.get("server.address").map(String::as_str),
        Some("127.0.0.1")
    );
    assert!(!collector.everything().contains(SECRET_VALUE));
}
