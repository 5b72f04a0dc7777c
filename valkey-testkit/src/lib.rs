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

mod admin;
pub mod binary;
mod config;
pub mod ports;
mod server;

pub use binary::{ensure_installed, valkey_server_path};
pub use config::ServerConfig;
pub use ports::free_port;
pub use server::{Server, info_field};
