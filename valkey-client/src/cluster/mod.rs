//! The cluster client, [`ValkeyCluster`], and its building blocks, each
//! tested on its own:
//!
//! - [`key_slot`]: the hash slot of a key, CRC16/XMODEM with hash tags, as
//!   the server computes it.
//! - [`route`]: where a command goes, from the command table.
//! - [`parse_shards`] and [`SlotMap`]: the layout `CLUSTER SHARDS` reports.
//! - [`decide`]: what the inner loop does with a failure (MOVED, ASK,
//!   TRYAGAIN, CLUSTERDOWN, ...), a pure decision table.
//! - [`pick`] and [`ReadFrom`]: which node of a shard serves a command.
//! - `refresh::RefreshGate` (crate-private): single-flight, rate-limited
//!   topology refreshes.
//! - [`ValkeyCluster`] (in `client/`): one [`Valkey`](crate::Valkey) per node, the
//!   slot map, and valkey-py's two loops; see `docs/retries.md`.

mod client;
pub(crate) use client::ClusterFirstAttempt;
mod read_from;
mod redirect;
mod refresh;
mod route;
mod slot;
mod topology;

pub use client::{Target, ValkeyCluster, ValkeyClusterBuilder};
pub use read_from::{ReadFrom, pick};
pub use redirect::{Action, CLUSTER_DOWN_WAIT, MAX_REDIRECTIONS, Redirect, decide};
pub use route::{Route, route};
pub use slot::{SLOTS, hash_tag, key_slot};
pub use topology::{NodeInfo, Shard, SlotMap, parse_shards, parse_slots};
