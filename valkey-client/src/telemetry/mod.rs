//! What a call tells the outside world: one `tracing` span per call, named
//! and filled after OpenTelemetry's database conventions, and, with the
//! `metrics` feature, counters and a latency histogram through the
//! `metrics` facade (see [`crate::metrics`] for the names).
//!
//! A span covers the whole call: every attempt, backoff wait and
//! redirection is inside it, and the retry machinery's events
//! ([`Event`](crate::Event)) land in it. Argument values are never
//! recorded: a key or a value may be personal data or a secret. With no
//! subscriber interested, a span costs one atomic load.

#[cfg(feature = "metrics")]
mod recorder;

use tracing::Span;
use tracing::field::Empty;

use crate::config::Addr;
use crate::error::{Error, Result};

/// The target of the call spans: `valkey_client::call=off` in an
/// `EnvFilter` drops them and keeps the events.
pub(crate) const SPAN_TARGET: &str = "valkey_client::call";

/// A new call span for `operation` (a command's name as sent, `PIPELINE`
/// or `MULTI`), the server still unknown. `operation` is called only when
/// a subscriber takes the span: the name is not even read otherwise.
#[inline]
pub(crate) fn call_span<'a>(operation: impl FnOnce() -> &'a str) -> Span {
    let span = tracing::info_span!(
        target: SPAN_TARGET,
        "valkey.call",
        db.system.name = "valkey",
        db.operation.name = Empty,
        db.operation.batch.size = Empty,
        db.namespace = Empty,
        server.address = Empty,
        server.port = Empty,
        error.type = Empty,
        db.response.status_code = Empty,
        otel.name = Empty,
        otel.kind = "client",
        otel.status_code = Empty,
    );
    if !span.is_disabled() {
        let operation = operation();
        span.record("db.operation.name", operation);
        span.record("otel.name", operation);
    }
    span
}

/// Records the server a call runs on, and its database.
#[inline]
pub(crate) fn record_server(span: &Span, addr: &Addr, db: i64) {
    if span.is_disabled() {
        return;
    }
    match addr.host_port() {
        Some((host, port)) => {
            span.record("server.address", host);
            span.record("server.port", port);
        }
        None => {
            span.record("server.address", tracing::field::display(addr));
        }
    }
    span.record("db.namespace", db);
}

/// Records the server of the attempt under way on the current span, the
/// call's within its retry path: a cluster call moves to another node after
/// a redirection or a topology change.
pub(crate) fn record_current_server(addr: &Addr, db: i64) {
    if tracing::level_enabled!(tracing::Level::INFO) {
        record_server(&Span::current(), addr, db);
    }
}

/// Records how many commands a pipeline or transaction carries.
pub(crate) fn record_batch_size(span: &Span, size: usize) {
    if !span.is_disabled() {
        span.record("db.operation.batch.size", size);
    }
}

/// One call, from start to result: its span and, with the `metrics`
/// feature, its meter. Held by the call's own future rather than wrapped
/// around it: a wrapper future would copy the whole call future once more
/// on every call. The span is entered only where events can happen, the
/// retry path; its timing runs from `start` to the drop.
pub(crate) struct CallScope {
    span: Span,
    #[cfg(feature = "metrics")]
    meter: recorder::CallMeter,
}

impl CallScope {
    /// A call named `operation` (read only when a subscriber takes the
    /// span); `name` labels it in the metrics (read only with them).
    #[inline]
    pub(crate) fn start<'a>(
        operation: impl FnOnce() -> &'a str,
        _name: impl FnOnce() -> &'a [u8],
    ) -> CallScope {
        CallScope {
            span: call_span(operation),
            #[cfg(feature = "metrics")]
            meter: recorder::CallMeter::start(_name()),
        }
    }

    /// The call's span.
    #[inline]
    pub(crate) fn span(&self) -> &Span {
        &self.span
    }

    /// Records how the call ended, once: a failure on the span
    /// (`error.type`, the server's code as `db.response.status_code`) and
    /// in the metrics. The span ends when the scope is dropped.
    #[inline]
    pub(crate) fn finish<T>(&self, result: &Result<T>) {
        if let Err(err) = result {
            record_error(&self.span, err);
        }
        #[cfg(feature = "metrics")]
        self.meter.finish(result.as_ref().err());
    }
}

fn record_error(span: &Span, err: &Error) {
    if span.is_disabled() {
        return;
    }
    span.record("error.type", err.kind().name());
    if let Some(code) = err.code() {
        span.record("db.response.status_code", code);
    }
    span.record("otel.status_code", "ERROR");
}

/// Counts a retry (a `Retry` event).
#[inline]
pub(crate) fn count_retry(_command: &str) {
    #[cfg(feature = "metrics")]
    recorder::retry(_command);
}

/// Counts a connection opened to replace a lost one.
#[inline]
pub(crate) fn count_reconnect(_addr: &str) {
    #[cfg(feature = "metrics")]
    recorder::reconnect(_addr);
}

/// Counts a `MOVED` or `ASK` redirection.
#[inline]
pub(crate) fn count_redirection(_ask: bool) {
    #[cfg(feature = "metrics")]
    recorder::redirection(_ask);
}
