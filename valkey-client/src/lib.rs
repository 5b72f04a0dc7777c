//! # valkey-client
//!
//! A Valkey client for Rust, standalone and cluster, built around a retry
//! system that keeps the contract of valkey-py's retry helpers.
//!
//! Two clients: [`Valkey`] for one server, [`ValkeyCluster`] for a cluster.
//! Both are cheap to clone (clones share connections), safe to share between
//! tasks, and configured with a builder ([`Valkey::builder`],
//! [`ValkeyCluster::builder`]) or a URL.
//!
//! ```
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let (_server, url) = valkey_testkit::start_server().await?;
//! use valkey_client::{Commands, ExponentialBackoff, Retry, Valkey};
//!
//! // `url` is e.g. "valkey://127.0.0.1:6379/0".
//! let client = Valkey::builder()
//!     .url(&url)?
//!     .retry(Retry::new(ExponentialBackoff::default(), 3))
//!     .build()
//!     .await?;
//! client.set("greeting", "hello").await?;
//! let greeting: Option<String> = client.get("greeting").await?;
//! assert_eq!(greeting.as_deref(), Some("hello"));
//! assert_eq!(client.incr("visits").await?, 1);
//! # Ok(()) }
//! ```
//!
//! ## What to use when
//!
//! - **One server**: [`Valkey`]. Every clone shares one multiplexed
//!   connection, reopened in the background when it breaks; blocking
//!   commands (`BLPOP`, `XREAD ... BLOCK`, `WAIT`) run on a small pool of
//!   dedicated connections. Retries are off until you give a [`Retry`]
//!   (`retry`, `retry_on_error`, `retry_on_timeout` on the builder), and
//!   then keep commands at most once: a command that may have run and is
//!   not safe to repeat is not sent again unless you opt in
//!   ([`CallOptions::retry_non_idempotent`]).
//! - **A cluster**: [`ValkeyCluster`], the same calls routed by hash slot,
//!   with `MOVED`/`ASK`/`TRYAGAIN`/`CLUSTERDOWN` handled, multi-key commands
//!   split by slot, reads from replicas ([`ReadFrom`]), and
//!   [`ValkeyCluster::request_on`] for one node or all of them.
//! - **Typed calls**: the methods of [`Commands`], one per command of
//!   valkey-server (`client.get(..)`, `client.set_with(.., SetOptions::..)`),
//!   each reply converted to the type you name ([`FromValue`]).
//!   **Any other command** (a module's, say): [`Valkey::request`] with a
//!   [`Cmd`], or [`Commands::send`].
//! - **Many commands in one write**: a [`Pipeline`] run with
//!   [`Valkey::pipeline`] (one result per command) or
//!   [`Valkey::pipeline_into`] (the replies as a tuple).
//! - **Atomic**: a [`Transaction`] (`MULTI ... EXEC` in one write) run with
//!   [`Valkey::exec_into`]; optimistic locking with [`Valkey::watch`], which
//!   runs your closure again when a watched key changed.
//! - **Lua**: a [`Script`], sent by digest (`EVALSHA`), loaded again where
//!   it is missing.
//! - **Walking keys**: [`Valkey::scan_iter`] and `hscan_iter`, `sscan_iter`,
//!   `zscan_iter`, streams of keys, with [`ScanIterOptions`].
//! - **Pub/sub**: a [`Subscriber`] from [`Valkey::subscriber`] (or the
//!   cluster's), on connections of its own, restoring every subscription
//!   after a reconnect, a failover or a slot move.
//! - **No async runtime**: [`blocking::Valkey`] and
//!   [`blocking::ValkeyCluster`], the same surface returning results.
//! - **Commands that change their connection's state** (`CLIENT TRACKING`,
//!   `MONITOR`, `CLIENT REPLY`, ...; the clients refuse them with
//!   [`ErrorKind::StatefulCommand`]): a dedicated [`Connection`], which
//!   never retries and never reconnects.
//! - **Retries and backoff of your own operations**: [`Retry`] with a
//!   strategy of [`backoff`] ([`ExponentialBackoff`], [`default_backoff`],
//!   ...), [`Retry::call_with_retry`]. The rules, and where they differ from
//!   valkey-py on purpose, are in the repository's `docs/retries.md`.
//! - **Watching what happens**: `on_event` on either builder receives every
//!   retry, give-up, reconnect, redirection, topology refresh and
//!   resubscription as an [`Event`]; the same events go to `tracing` under
//!   the target `valkey_client`.
//!
//! ## Layers
//!
//! Each uses only the ones listed before it:
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
//! - on top of both clients: [`Transaction`] and `watch`, [`Script`], scans
//!   as async streams, and [`Valkey::select`] for another database;
//! - [`pubsub`]: the [`Subscriber`], made by either client;
//! - [`blocking`]: both clients driven on a private runtime.
//!
//! Beside them, independent of connections:
//!
//! - [`backoff`]: the waits between retries, valkey-py's strategies;
//! - [`retry`]: [`Retry`], which runs any operation again after supported
//!   failures, async or blocking.

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
pub use connection::{Connection, MultiplexOptions, Multiplexed, PushHandler};
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

/// The examples of `docs/retries.md`, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../docs/retries.md")]
pub struct RetriesDoctests;

/// The examples of `docs/commands.md`, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../docs/commands.md")]
pub struct CommandsDoctests;

/// The examples of `docs/shared-connection.md`, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../docs/shared-connection.md")]
pub struct SharedConnectionDoctests;

/// The examples of `docs/design.md`, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../docs/design.md")]
pub struct DesignDoctests;

/// The examples of `docs/reliability.md`, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../docs/reliability.md")]
pub struct ReliabilityDoctests;

/// The examples of `docs/observability.md`, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../docs/observability.md")]
pub struct ObservabilityDoctests;

/// The examples of `docs/benchmarks.md`, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../docs/benchmarks.md")]
pub struct BenchmarksDoctests;

#[cfg(test)]
mod doc_files_are_doctests {
    /// A new `docs/*.md` file must be added above, or its examples would
    /// go untested.
    #[test]
    fn every_docs_file_is_included() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let lib = std::fs::read_to_string(root.join("src/lib.rs")).unwrap();
        let docs = std::fs::read_dir(root.join("../docs")).unwrap();
        for entry in docs {
            let name = entry.unwrap().file_name().into_string().unwrap();
            if name.ends_with(".md") {
                let include = format!("include_str!(\"../../docs/{name}\")");
                assert!(
                    lib.contains(&include),
                    "docs/{name} is not run as doc tests"
                );
            }
        }
    }
}
