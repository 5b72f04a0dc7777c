//! # valkey-client
//!
//! A Valkey client for Rust, standalone and cluster, built around a retry
//! system that keeps the contract of valkey-py's retry helpers.
//!
//! The layers, each using only the ones listed before it:
//!
//! - [`resp`]: RESP2/RESP3 values and codec, no I/O;
//! - [`error`]: one [`Error`] type with an [`ErrorKind`], a family and the
//!   delivery state of the request;
//! - [`Cmd`]: a command encoded once into its wire form;
//! - [`command`]: the command table: flags, keys, cluster policies, repeat safety;
//! - [`config`]: connection settings, from setters or a URL;
//! - [`connection`]: one socket (TCP, Unix, TLS) with its handshake;
//! - [`Valkey`]: the standalone client, one node plus a retry policy;
//! - [`cluster`] and [`ValkeyCluster`]: hash slots, routing, topology, and
//!   the cluster client built on one `Valkey` per node;
//! - on top of both clients: [`Transaction`] (`MULTI ... EXEC` in one
//!   write) and `watch` (optimistic locking on a dedicated connection),
//!   [`Script`] (`EVALSHA` with a fallback), scans as async streams
//!   ([`ScanIterOptions`]), and [`Valkey::select`] for another database.
//! - [`pubsub`]: a [`Subscriber`] on connections of its own, made by
//!   either client, that restores its subscriptions after any reconnect,
//!   failover or slot move.
//!
//! Beside them, independent of connections:
//!
//! - [`backoff`]: the waits between retries, valkey-py's strategies;
//! - [`retry`]: [`Retry`], which runs any operation again after supported
//!   failures, async or blocking.
//!
//! ```no_run
//! # async fn demo() -> valkey_client::Result<()> {
//! use valkey_client::{Cmd, Connection, ConnectionConfig};
//! let config: ConnectionConfig = "valkey://127.0.0.1:6379/0".parse()?;
//! let mut conn = Connection::connect(&config).await?;
//! let pong = conn.request(&Cmd::new("PING")).await?;
//! assert_eq!(pong.as_str(), Some("PONG"));
//! # Ok(()) }
//! ```

mod arg_buf;
pub mod backoff;
pub mod blocking;
mod client;
pub mod cluster;
pub mod cmd;
pub mod command;
pub mod commands;
pub mod config;
pub mod connection;
pub mod error;
mod from_value;
#[cfg(feature = "metrics")]
pub mod metrics;
mod node;
mod pipeline;
// pub/sub (issue 10, part 4)
pub mod pubsub;
pub mod resp;
pub mod retry;
mod scan;
mod script;
mod telemetry;
mod transaction;

pub use backoff::{
    Backoff, ConstantBackoff, DecorrelatedJitterBackoff, EqualJitterBackoff, ExponentialBackoff,
    FullJitterBackoff, NoBackoff, default_backoff,
};
pub use client::{CallOptions, Valkey, ValkeyBuilder};
pub use cluster::{ReadFrom, Target, ValkeyCluster, ValkeyClusterBuilder};
pub use cmd::{ArgIter, ArgWriter, Cmd, ToArg, ToArgs};
pub use commands::{Call, Commands};
pub use config::{Addr, ConnectionConfig, Protocol, Secret, TlsConfig};
pub use connection::{Connection, MultiplexOptions, Multiplexed};
pub use error::{Delivery, Error, ErrorFamily, ErrorKind, Result};
#[cfg(feature = "serde_json")]
pub use from_value::Json;
pub use from_value::{BigNumber, FromValue, Verbatim};
pub use node::{Event, EventListener, GiveUpReason, RetryBudget};
pub use pipeline::Pipeline;
pub use pubsub::{Message, MessageKind, Subscriber};
pub use resp::Value;
pub use retry::Retry;
pub use scan::ScanIterOptions;
pub use script::{Script, ScriptClient, ScriptInvocation};
pub use transaction::{DEFAULT_WATCH_ATTEMPTS, Transaction, WatchOptions, Watched};

/// The README's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
