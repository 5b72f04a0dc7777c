//! # valkey-client
//!
//! A Valkey client for Rust, standalone and cluster.
#![warn(missing_docs)]

pub mod resp;

pub use resp::Value;
