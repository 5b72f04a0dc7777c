//! Pub/sub: a [`Subscriber`] that keeps its subscriptions.
//!
//! ```no_run
//! # async fn demo(client: valkey_client::Valkey) -> valkey_client::Result<()> {
//! let mut sub = client.subscriber().await?;
//! sub.subscribe(["a", "b"]).await?;     // returns once the server confirmed both
//! sub.psubscribe(["news.*"]).await?;
//! while let Some(msg) = sub.next().await {
//!     println!("{:?} on {:?}", msg.payload_str(), msg.channel_str());
//! }
//! # Ok(()) }
//! ```
//!
//! A `Subscriber` is also a [`Stream`](futures_util::Stream) of
//! [`Message`]s. It is made by [`Valkey::subscriber`](crate::Valkey::subscriber)
//! or [`ValkeyCluster::subscriber`](crate::ValkeyCluster::subscriber) and
//! uses that client's connection settings (address, protocol, credentials,
//! TLS, connect and response timeouts), its reconnect backoff (a cluster
//! client's: the backoff of its `Retry`, or the default) and its
//! [`on_event`](crate::ValkeyBuilder::on_event) listener; its connections
//! are its own, never the client's shared one.
//!
//! # Connections
//!
//! Each connection has a task of its own, the only one to touch its
//! socket. It sends only `SUBSCRIBE`-family commands and `PING`, so it
//! works the same in RESP3 (messages arrive as pushes) and in RESP2 (where
//! a subscribed connection takes nothing else). Many names go in one
//! command (up to 512; shard channels grouped by slot), and a call returns
//! once the server confirmed every name.
//!
//! # What survives what
//!
//! The subscriber keeps the set of names the server confirmed, and puts it
//! back whenever it is lost:
//!
//! - **A broken connection** (EOF, reset, `CLIENT KILL`, a server restart,
//!   or a connection that stopped answering: after
//!   [`ping_interval`](SubscriberOptions::ping_interval) of silence it is
//!   sent a `PING`, and it is dead if nothing arrives within the client's
//!   response timeout, 5 s without one): the task reconnects, waiting the
//!   client's reconnect backoff between attempts (at least 10 ms, doubling
//!   up to 1 s, whatever the backoff says, and at most 30 s; the waits
//!   start over only once a connection carried its subscriptions for a
//!   second, so a server that accepts and drops connections is never
//!   hammered). Each attempt is an [`Event::Reconnecting`](crate::Event::Reconnecting).
//!   It then subscribes to the whole set again.
//! - **In a cluster, a slot migration or failover**: the old owner of a
//!   slot drops its shard channels and tells the subscriber (an unsolicited
//!   `sunsubscribe`), or answers `MOVED`, or dies. The subscriber reads the
//!   topology (through the cluster client; every 250 ms while a node cannot
//!   be reached) and subscribes those channels on the new owner. Every
//!   placement is also checked against the client's view after each
//!   topology read and every second. Plain channels and
//!   patterns live on one node (any node sees every message); they move to
//!   another primary when that node cannot be reached.
//!
//! A server that refuses to restore a subscription (`CLUSTERDOWN`,
//! `LOADING`, an ACL change) is tried again on a new connection after the
//! backoff, each attempt an `Event::Reconnecting`: the subscriber never
//! gives a subscription up on its own. A refusal of a subscribe call
//! itself is that call's error.
//!
//! Once the server confirmed every lost name again, the subscriber reports
//! the gap: [`Event::Resubscribed`](crate::Event::Resubscribed), with the
//! names, the node, the cause, and how long the gap lasted (from the loss
//! being noticed to the last confirmation). [`Subscriber::gaps`] counts them.
//!
//! **Messages published during a gap are lost.** The server keeps nothing
//! for a subscriber that is not connected (that is pub/sub's design;
//! streams keep messages). A gap also starts before it is noticed: a dead
//! connection is noticed at once when the server closes it, but only after
//! the `PING` timeout when packets silently stop. Messages for names
//! already restored are delivered while the others are being restored.
//!
//! # The buffer
//!
//! Messages wait for the user in a buffer of
//! [`capacity`](SubscriberOptions::capacity) messages (1024 by default);
//! nothing in the subscriber grows without bound. When it is full, the
//! [`Overflow`] policy decides: by default a connection's task stops
//! reading (backpressure, up to the server's output buffer limit, after
//! which the server closes the connection and the result is a gap), or it
//! drops the oldest messages, counted and reported. While a subscribe or
//! unsubscribe call waits for its confirmation behind a full buffer, the
//! oldest messages are dropped (counted and reported) whatever the
//! policy: the caller is not taking messages then, and would otherwise
//! wait forever.
//!
//! # Dropping
//!
//! Dropping the `Subscriber` ends its tasks and closes its connections.
//! A subscribe call dropped before it returns does not cancel the
//! subscription: it may still happen, and [`Subscriber::channels`] then
//! lists it.

mod link;
mod message;
mod options;
mod queue;
pub(crate) mod sharded;
mod state;
mod subscriber;

pub use message::{Message, MessageKind};
pub use options::{DEFAULT_CAPACITY, DEFAULT_PING_INTERVAL, Overflow, SubscriberOptions};
pub use subscriber::Subscriber;

/// Sleeps until `at`, or forever without one.
pub(crate) async fn sleep_until_some(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
