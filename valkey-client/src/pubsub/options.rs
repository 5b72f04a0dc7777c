//! [`SubscriberOptions`] and the [`Overflow`] policy of the message buffer.

use std::time::Duration;

/// Messages buffered between the connection and the user, by default.
pub const DEFAULT_CAPACITY: usize = 1024;

/// Silence on a connection after which it is probed with `PING`, by default.
pub const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(5);

/// What happens when the buffer of a [`Subscriber`](super::Subscriber) is
/// full because the user takes messages more slowly than they arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Overflow {
    /// Stop reading the connection until the user takes a message (the
    /// default). Nothing is lost in the client: the server keeps what it
    /// cannot send in its output buffer, up to its
    /// `client-output-buffer-limit pubsub` (32 MiB hard, 8 MiB for 60 s by
    /// default); past that it closes the connection, which the subscriber
    /// treats as any lost connection: it reconnects, restores every
    /// subscription and reports the gap ([`Event::Resubscribed`]), and the
    /// messages of the gap are lost.
    ///
    /// [`Event::Resubscribed`]: crate::Event::Resubscribed
    #[default]
    Backpressure,
    /// Keep reading; when the buffer is full, drop the oldest message to
    /// make room. Drops are counted
    /// ([`Subscriber::dropped`](super::Subscriber::dropped)) and reported
    /// with [`Event::MessagesDropped`](crate::Event::MessagesDropped), at
    /// most once a second per connection.
    DropOldest,
}

/// How a [`Subscriber`](super::Subscriber) buffers and watches its
/// connections. The connection settings themselves (address, protocol,
/// credentials, TLS, timeouts, reconnect backoff) come from the client it
/// is made from.
///
/// ```
/// use std::time::Duration;
/// use valkey_client::pubsub::{Overflow, SubscriberOptions};
/// let options = SubscriberOptions::new()
///     .capacity(10_000)
///     .overflow(Overflow::DropOldest)
///     .ping_interval(Duration::from_secs(2));
/// ```
#[derive(Debug, Clone)]
pub struct SubscriberOptions {
    pub(crate) capacity: usize,
    pub(crate) overflow: Overflow,
    pub(crate) ping_interval: Duration,
}

impl Default for SubscriberOptions {
    fn default() -> Self {
        SubscriberOptions {
            capacity: DEFAULT_CAPACITY,
            overflow: Overflow::default(),
            ping_interval: DEFAULT_PING_INTERVAL,
        }
    }
}

impl SubscriberOptions {
    /// The defaults: 1024 messages, [`Overflow::Backpressure`], a `PING`
    /// after 5 s of silence.
    pub fn new() -> SubscriberOptions {
        SubscriberOptions::default()
    }

    /// The most messages buffered for the user (at least 1).
    pub fn capacity(mut self, messages: usize) -> Self {
        self.capacity = messages.max(1);
        self
    }

    /// What a full buffer does.
    pub fn overflow(mut self, overflow: Overflow) -> Self {
        self.overflow = overflow;
        self
    }

    /// After this long without receiving anything, a connection is sent a
    /// `PING`; if nothing arrives within the client's response timeout
    /// (5 s when the client has none) after that, the connection is taken
    /// for dead and replaced. So a link that silently stops carrying
    /// packets is noticed. At least 10 ms. While the buffer is full under
    /// [`Overflow::Backpressure`] the connection is not read, and not
    /// probed either.
    pub fn ping_interval(mut self, interval: Duration) -> Self {
        self.ping_interval = interval.max(Duration::from_millis(10));
        self
    }
}
