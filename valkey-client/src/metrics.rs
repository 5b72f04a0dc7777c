//! The metrics the client reports with the `metrics` feature, through the
//! [`metrics`](https://docs.rs/metrics) facade: install any recorder
//! (`metrics-exporter-prometheus`, an OpenTelemetry bridge, ...) and they
//! appear. Without the feature none of this code is compiled in.
//!
//! Names follow OpenTelemetry's dotted style; a Prometheus exporter turns
//! the dots into underscores. Labels are low-cardinality: the command
//! name (`get`, `client|list` style names from the command table;
//! `pipeline` and `multi` for batches), the error kind, the server
//! address. Argument values never appear.
//!
//! | name | type | labels | what |
//! |---|---|---|---|
//! | [`CALLS`] | counter | `command` | calls started: one per command, pipeline or transaction, whatever its retries |
//! | [`ERRORS`] | counter | `command`, `kind` | calls that ended in an error, by [`ErrorKind::name`](crate::ErrorKind::name) |
//! | [`RETRIES`] | counter | `command` | attempts after the first, one per [`Event::Retry`](crate::Event::Retry) |
//! | [`RECONNECTS`] | counter | `server` | connections opened to replace a lost one |
//! | [`REDIRECTIONS`] | counter | `type` (`moved`, `ask`) | cluster redirections followed |
//! | [`IN_FLIGHT`] | gauge | | calls started and not yet finished or dropped |
//! | [`CALL_DURATION`] | histogram | `command` | seconds from the call's start to its result, retries and waits included |

/// Counter: calls started.
pub const CALLS: &str = "valkey.client.calls";
/// Counter: calls that ended in an error.
pub const ERRORS: &str = "valkey.client.errors";
/// Counter: retries (attempts after the first).
pub const RETRIES: &str = "valkey.client.retries";
/// Counter: connections opened to replace a lost one.
pub const RECONNECTS: &str = "valkey.client.reconnects";
/// Counter: `MOVED` and `ASK` redirections followed.
pub const REDIRECTIONS: &str = "valkey.client.redirections";
/// Gauge: calls in flight.
pub const IN_FLIGHT: &str = "valkey.client.in_flight";
/// Histogram: call duration in seconds.
pub const CALL_DURATION: &str = "valkey.client.call.duration";
