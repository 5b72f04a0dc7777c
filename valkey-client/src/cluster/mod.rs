//! Cluster building blocks. The `ValkeyCluster` client is being built on
//! them (see the cluster issue); what is here is complete and tested on its
//! own.
//!
//! - [`key_slot`]: the hash slot of a key, CRC16/XMODEM with hash tags, as
//!   the server computes it.

mod slot;

pub use slot::{SLOTS, hash_tag, key_slot};
