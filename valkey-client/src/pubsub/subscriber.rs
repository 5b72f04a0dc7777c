//! [`Subscriber`]: the user's side. It sends requests to its task(s) and
//! takes messages from the bounded buffer they fill; it owns the tasks, so
//! dropping it ends them and closes their connections.

use std::collections::BTreeSet;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use super::link::{self, LinkCmd, Target};
use super::message::{Kind, Message};
use super::options::SubscriberOptions;
use super::state::{CloseOnDrop, Shared, TaskGuard, Ticket};
use crate::backoff::Backoff;
use crate::cmd::ToArg;
use crate::config::ConnectionConfig;
use crate::connection::Connection;
use crate::error::{Error, ErrorKind, Result};
use crate::node::events::EventListener;

/// Subscriptions and the messages they bring, as an async
/// [`Stream`](futures_util::Stream) of [`Message`]s.
///
/// Made by [`Valkey::subscriber`](crate::Valkey::subscriber) or
/// [`ValkeyCluster::subscriber`](crate::ValkeyCluster::subscriber). Each
/// subscribe call returns once the server confirmed every name; after
/// that, the subscription is kept across reconnects, failovers and slot
/// moves (see [the module docs](crate::pubsub) for what that covers and
/// what a gap costs). Messages wait in a bounded buffer until taken with
/// [`next`](Subscriber::next) or the `Stream`.
///
/// ```no_run
/// # async fn demo(client: valkey_client::Valkey) -> valkey_client::Result<()> {
/// let mut sub = client.subscriber().await?;
/// sub.subscribe(["orders", "alerts"]).await?;
/// sub.psubscribe(["news.*"]).await?;
/// while let Some(msg) = sub.next().await {
///     match msg.pattern_str() {
///         Some(pattern) => println!("{pattern} matched {:?}", msg.channel_str()),
///         None => println!("{:?}: {:?}", msg.channel_str(), msg.payload_str()),
///     }
/// }
/// # Ok(()) }
/// ```
pub struct Subscriber {
    shared: Arc<Shared>,
    commands: mpsc::Sender<LinkCmd>,
    /// The task behind `commands` (a link, or a cluster's router): ended
    /// when the subscriber is dropped.
    _task: TaskGuard,
}

impl std::fmt::Debug for Subscriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscriber")
            .field("channels", &self.shared.registered(Kind::Channel).len())
            .field("patterns", &self.shared.registered(Kind::Pattern).len())
            .field("shard_channels", &self.shared.registered(Kind::Shard).len())
            .field("buffered", &self.shared.queue.len())
            .finish_non_exhaustive()
    }
}

/// The names of an argument list, each once, in order.
fn names<C: ToArg>(items: impl IntoIterator<Item = C>) -> Vec<Bytes> {
    let mut seen = BTreeSet::new();
    items
        .into_iter()
        .map(|item| item.with_bytes(Bytes::copy_from_slice))
        .filter(|name| seen.insert(name.clone()))
        .collect()
}

fn ended() -> Error {
    Error::new(
        ErrorKind::Connection,
        "the subscriber's connection task has ended",
    )
}

impl Subscriber {
    /// A standalone subscriber: one link to the server of `config`,
    /// connected before this returns.
    pub(crate) async fn standalone(
        config: ConnectionConfig,
        options: &SubscriberOptions,
        listener: Option<EventListener>,
        backoff: Box<dyn Backoff>,
    ) -> Result<Subscriber> {
        let shared = Shared::new(options, listener, config.response_timeout_value(), backoff);
        let conn = Connection::connect(&config).await?;
        let handle = link::spawn(
            shared.clone(),
            Target::Fixed(config),
            Some(conn),
            None,
            CloseOnDrop(shared.clone()),
        );
        let (commands, task) = handle.into_parts();
        Ok(Subscriber::new(shared, commands, task))
    }

    pub(crate) fn new(
        shared: Arc<Shared>,
        commands: mpsc::Sender<LinkCmd>,
        task: TaskGuard,
    ) -> Subscriber {
        Subscriber {
            shared,
            commands,
            _task: task,
        }
    }

    /// `SUBSCRIBE`: returns once the server confirmed every channel.
    /// Channels already subscribed are confirmed again; an empty list does
    /// nothing. While the connection is down the call waits for it to be
    /// back (bound it with a timeout if needed); a server error (e.g.
    /// `NOPERM`) is returned. Dropping the future before it returns does
    /// not cancel the request: the subscription may still happen (then
    /// `channels()` lists it).
    pub async fn subscribe<C: ToArg>(
        &mut self,
        channels: impl IntoIterator<Item = C>,
    ) -> Result<()> {
        self.add(Kind::Channel, names(channels)).await
    }

    /// `PSUBSCRIBE`: returns once the server confirmed every pattern.
    pub async fn psubscribe<C: ToArg>(
        &mut self,
        patterns: impl IntoIterator<Item = C>,
    ) -> Result<()> {
        self.add(Kind::Pattern, names(patterns)).await
    }

    /// `SSUBSCRIBE`: shard channels, each on the primary that owns its
    /// slot (in a cluster; on the server itself otherwise). Returns once
    /// every one is confirmed; a `MOVED` on the way is followed.
    pub async fn ssubscribe<C: ToArg>(
        &mut self,
        channels: impl IntoIterator<Item = C>,
    ) -> Result<()> {
        self.add(Kind::Shard, names(channels)).await
    }

    /// `UNSUBSCRIBE`: returns once the server confirmed; the channels are
    /// no longer restored. An empty list means every channel.
    pub async fn unsubscribe<C: ToArg>(
        &mut self,
        channels: impl IntoIterator<Item = C>,
    ) -> Result<()> {
        self.remove(Kind::Channel, names(channels)).await
    }

    /// `PUNSUBSCRIBE`; an empty list means every pattern.
    pub async fn punsubscribe<C: ToArg>(
        &mut self,
        patterns: impl IntoIterator<Item = C>,
    ) -> Result<()> {
        self.remove(Kind::Pattern, names(patterns)).await
    }

    /// `SUNSUBSCRIBE`; an empty list means every shard channel.
    pub async fn sunsubscribe<C: ToArg>(
        &mut self,
        channels: impl IntoIterator<Item = C>,
    ) -> Result<()> {
        self.remove(Kind::Shard, names(channels)).await
    }

    async fn add(&mut self, kind: Kind, names: Vec<Bytes>) -> Result<()> {
        if names.is_empty() {
            return Ok(());
        }
        let (ticket, answer) = Ticket::new(names.len());
        let cmd = LinkCmd::Subscribe {
            kind,
            names,
            ticket: Some(ticket),
            gap: None,
        };
        self.request(cmd, answer).await
    }

    async fn remove(&mut self, kind: Kind, names: Vec<Bytes>) -> Result<()> {
        let names = if names.is_empty() {
            self.shared.registered(kind)
        } else {
            names
        };
        if names.is_empty() {
            return Ok(());
        }
        let (done, answer) = oneshot::channel();
        let cmd = LinkCmd::Unsubscribe {
            kind,
            names,
            done: Some(done),
            user: true,
        };
        self.request(cmd, answer).await
    }

    async fn request(&mut self, cmd: LinkCmd, answer: oneshot::Receiver<Result<()>>) -> Result<()> {
        self.commands.send(cmd).await.map_err(|_| ended())?;
        answer.await.map_err(|_| ended())?
    }

    /// The next message; waits for one. `None` only if the subscriber's
    /// task ended (it does not while the subscriber lives, unless it
    /// panicked).
    pub async fn next(&mut self) -> Option<Message> {
        std::future::poll_fn(|cx| self.shared.queue.poll_pop(cx)).await
    }

    /// The next message if one is buffered, without waiting.
    pub fn try_next(&mut self) -> Option<Message> {
        self.shared.queue.try_pop()
    }

    /// The channels subscribed (confirmed by the server, not unsubscribed),
    /// sorted. They stay listed while being restored after a reconnect.
    pub fn channels(&self) -> Vec<Bytes> {
        self.shared.registered(Kind::Channel)
    }

    /// The patterns subscribed, sorted.
    pub fn patterns(&self) -> Vec<Bytes> {
        self.shared.registered(Kind::Pattern)
    }

    /// The shard channels subscribed, sorted.
    pub fn shard_channels(&self) -> Vec<Bytes> {
        self.shared.registered(Kind::Shard)
    }

    /// Messages in the buffer now.
    pub fn buffered_len(&self) -> usize {
        self.shared.queue.len()
    }

    /// The most messages the buffer holds.
    pub fn capacity(&self) -> usize {
        self.shared.queue.capacity()
    }

    /// Messages dropped so far because the buffer was full.
    pub fn dropped(&self) -> u64 {
        self.shared.queue.dropped()
    }

    /// Gaps so far: times lost subscriptions were restored (each also an
    /// [`Event::Resubscribed`](crate::Event::Resubscribed)).
    pub fn gaps(&self) -> u64 {
        self.shared.gaps()
    }
}

impl futures_util::Stream for Subscriber {
    type Item = Message;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Message>> {
        self.shared.queue.poll_pop(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subscriber_and_its_messages_move_between_tasks() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<Subscriber>();
        send_sync::<Message>();
    }

    #[test]
    fn names_are_taken_once_in_order() {
        assert_eq!(names(["b", "a", "b"]), [Bytes::from("b"), Bytes::from("a")]);
    }
}
