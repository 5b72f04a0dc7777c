//! Real `valkey-server` processes for integration tests: standalone servers, replicas,
//! clusters, and a TLS terminator in front of them.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use valkey_testkit::{Server, ServerConfig};
//! let server = Server::start(ServerConfig::new().config("maxmemory", "10mb")).await?;
//! println!("connect to {}", server.url());
//! // The process is killed when `server` is dropped, also if the test panics.
//! # Ok(()) }
//! ```
//!
//! The `valkey-server` binary is found or installed by [`valkey_server_path`].
//! [`TlsTerminator`] puts stunnel in front of a server for TLS tests.

mod admin;
pub mod binary;
mod certs;
mod cluster;
mod config;
pub mod ports;
mod server;
mod slots;
mod tls;

pub use binary::{ensure_installed, valkey_server_path};
pub use certs::{PemPair, TestCerts};
pub use cluster::{Cluster, ClusterConfig};
pub use config::ServerConfig;
pub use ports::free_port;
pub use server::{Server, info_field};
pub use slots::{SLOT_COUNT, SlotMap, SlotRange};
pub use tls::{TlsOptions, TlsTerminator, stunnel_path};
