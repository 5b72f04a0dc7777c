//! One server node, below the clients: the keeper of its live multiplexed
//! connection ([`keeper::ConnectionKeeper`]: reconnects with a backoff,
//! retires a suspect connection), the pool of dedicated connections for
//! blocking commands, the pure retry policy with its budget and events, and
//! the one retry loop that applies it.
//! `Valkey` is one node plus a policy; the cluster client runs one keeper
//! per node and shares all of this rather than copying it.

pub(crate) mod blocking;
pub(crate) mod budget;
pub(crate) mod events;
pub(crate) mod keeper;
pub(crate) mod options;
pub(crate) mod policy;
pub(crate) mod retry_loop;

pub use budget::RetryBudget;
pub use events::{Event, EventListener, GiveUpReason};
