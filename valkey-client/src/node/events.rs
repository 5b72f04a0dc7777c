//! [`Event`]: what the client reports about retries and reconnects.
//!
//! Every event is also a `tracing` event (target `valkey_client`), so a
//! subscriber sees them without any listener. Events happen only on
//! failures: the success path never builds one.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::error::{Error, ErrorFamily};
use crate::telemetry;

/// Something the retry or reconnect machinery did.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event<'a> {
    /// A command failed and will be sent again after `wait`.
    Retry {
        /// The command's name.
        command: &'a str,
        /// Failures so far for this call (1 on the first retry).
        attempt: u32,
        /// The backoff before the next attempt.
        wait: Duration,
        /// The failure being retried.
        error: &'a Error,
    },
    /// A command failed for good.
    GaveUp {
        /// The command's name.
        command: &'a str,
        /// Attempts made, the first included.
        attempts: u32,
        /// Why no further attempt was made.
        reason: GiveUpReason,
        /// The error returned to the caller.
        error: &'a Error,
    },
    /// The connection is down; the next attempt to open it follows `wait`.
    Reconnecting {
        /// The server address.
        addr: &'a str,
        /// Failed attempts so far (1 after the first).
        attempt: u32,
        /// The wait before the next attempt.
        wait: Duration,
        /// Why the connection is down, or why the last attempt failed.
        error: &'a Error,
    },
    /// A new connection is up after a failure.
    Reconnected {
        /// The server address.
        addr: &'a str,
        /// Failed attempts before this success.
        failed_attempts: u32,
    },
    /// Background reconnection stopped after the configured number of
    /// attempts; the next command tries again.
    ReconnectGaveUp {
        /// The server address.
        addr: &'a str,
        /// Failed attempts.
        attempts: u32,
        /// The last failure.
        error: &'a Error,
    },
    /// A cluster node answered `MOVED` or `ASK`: the command goes to `to`.
    Redirected {
        /// The command's name.
        command: &'a str,
        /// The slot the redirection is for.
        slot: u16,
        /// The node it goes to now.
        to: &'a str,
        /// `ASK` (one command, slot map unchanged) rather than `MOVED`.
        ask: bool,
    },
    /// The cluster topology was read again.
    TopologyRefreshed {
        /// The node whose view was taken (with the agreement of the others
        /// asked).
        from: &'a str,
        /// Shards (primaries) in the new view.
        shards: usize,
        /// Whether any slot changed owner.
        changed: bool,
        /// Slots no shard serves.
        uncovered: usize,
    },
    /// Reading the cluster topology failed at every node asked; the view
    /// in use stays.
    TopologyRefreshFailed {
        /// The last failure.
        error: &'a Error,
    },
    /// A cluster node's `retry` was spent on connection failures: it is
    /// dropped from the startup nodes and the topology is read again.
    NodeDropped {
        /// The node's address.
        addr: &'a str,
        /// The failure.
        error: &'a Error,
    },
    // --- pub/sub (`crate::pubsub::Subscriber`) ---
    /// A subscriber lost subscriptions (its connection broke, or the
    /// server dropped shard channels whose slot moved) and has restored
    /// them all: the server confirmed every one. Messages published to
    /// them during `gap` were not received: the server keeps nothing for
    /// a subscriber that is not connected.
    Resubscribed {
        /// The node that confirmed the last of them.
        addr: &'a str,
        /// The channels restored (`SUBSCRIBE`).
        channels: &'a [Bytes],
        /// The patterns restored (`PSUBSCRIBE`).
        patterns: &'a [Bytes],
        /// The shard channels restored (`SSUBSCRIBE`).
        shard_channels: &'a [Bytes],
        /// From the loss being noticed to the last confirmation.
        gap: Duration,
        /// Why they were lost.
        error: &'a Error,
    },
    /// A subscriber's buffer was full and the oldest messages were dropped
    /// to make room ([`Overflow::DropOldest`](crate::pubsub::Overflow), or
    /// while a `subscribe` call waited for its confirmation behind them).
    /// Reported at most once a second per connection.
    MessagesDropped {
        /// The node whose messages did not fit.
        addr: &'a str,
        /// Dropped since the last report.
        dropped: u64,
        /// Dropped by this subscriber so far.
        total: u64,
    },
}

/// Why a failed command was not retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum GiveUpReason {
    /// No retry is configured, or the error's kind is not retried.
    NotRetried,
    /// The request may have run and the command is not safe to repeat (at
    /// most once by default; opt in per call or per client).
    MayHaveRun,
    /// The configured number of retries is spent.
    RetriesExhausted,
    /// The next attempt would start after the call's deadline.
    DeadlineReached,
    /// The client's retry budget is empty.
    BudgetExhausted,
}

/// A function called with every [`Event`].
pub type EventListener = Arc<dyn Fn(&Event<'_>) + Send + Sync>;

/// Reports an event to `tracing` and to the listener, if any.
pub(crate) fn emit(listener: Option<&EventListener>, event: Event<'_>) {
    match &event {
        Event::Retry {
            command,
            attempt,
            wait,
            error,
        } => {
            telemetry::count_retry(command);
            tracing::info!(
            command,
            attempt,
            wait_ms = wait.as_millis() as u64,
            kind = ?error.kind(),
            error = %error,
            "retrying command"
            )
        }
        // A server's error reply is the caller's to handle (WRONGTYPE,
        // NOSCRIPT, a failed script): no warning for what is often expected.
        // A failure of the path to the server is worth one.
        Event::GaveUp {
            command,
            attempts,
            reason,
            error,
        } => {
            if error.family() == ErrorFamily::Response {
                tracing::debug!(command, attempts, ?reason, kind = ?error.kind(), error = %error, "command failed")
            } else {
                tracing::warn!(command, attempts, ?reason, kind = ?error.kind(), error = %error, "command failed")
            }
        }
        Event::Reconnecting {
            addr,
            attempt,
            wait,
            error,
        } => tracing::info!(
            addr,
            attempt,
            wait_ms = wait.as_millis() as u64,
            kind = ?error.kind(),
            error = %error,
            "reconnecting"
        ),
        Event::Reconnected {
            addr,
            failed_attempts,
        } => tracing::info!(addr, failed_attempts, "reconnected"),
        Event::ReconnectGaveUp {
            addr,
            attempts,
            error,
        } => tracing::warn!(addr, attempts, error = %error, "gave up reconnecting"),
        Event::Redirected {
            command,
            slot,
            to,
            ask,
        } => {
            telemetry::count_redirection(*ask);
            tracing::debug!(command, slot, to, ask, "redirected")
        }
        Event::TopologyRefreshed {
            from,
            shards,
            changed,
            uncovered,
        } => tracing::info!(from, shards, changed, uncovered, "cluster topology read"),
        Event::TopologyRefreshFailed { error } => {
            tracing::warn!(error = %error, "reading the cluster topology failed")
        }
        Event::NodeDropped { addr, error } => {
            tracing::info!(addr, error = %error, "cluster node dropped from the startup nodes")
        }
        Event::Resubscribed {
            addr,
            channels,
            patterns,
            shard_channels,
            gap,
            error,
        } => tracing::warn!(
            addr,
            channels = channels.len(),
            patterns = patterns.len(),
            shard_channels = shard_channels.len(),
            gap_ms = gap.as_millis() as u64,
            error = %error,
            "subscriptions restored; messages published during the gap were lost"
        ),
        Event::MessagesDropped {
            addr,
            dropped,
            total,
        } => tracing::warn!(
            addr,
            dropped,
            total,
            "subscriber buffer full: oldest messages dropped"
        ),
    }
    if let Some(listener) = listener {
        listener(&event);
    }
}
