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
//! - [`connection`]: one socket (TCP, Unix, TLS) with its handshake.
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

pub mod cmd;
pub mod command;
pub mod config;
pub mod connection;
pub mod error;
pub mod resp;

pub use cmd::{ArgIter, Cmd, ToArg};
pub use config::{Addr, ConnectionConfig, Protocol, Secret, TlsConfig};
pub use connection::Connection;
pub use error::{Delivery, Error, ErrorFamily, ErrorKind, Result};
pub use resp::Value;

/// The README's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
