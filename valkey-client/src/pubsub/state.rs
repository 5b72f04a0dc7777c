//! What the tasks of one subscriber share ([`Shared`]), the sets of names
//! they keep ([`Subs`]), and the two trackers that complete when the server
//! has confirmed a set of names: a user's call ([`Ticket`]) and a restored
//! outage ([`Gap`]).

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::message::Kind;
use super::options::{Overflow, SubscriberOptions};
use super::queue::Queue;
use crate::backoff::Backoff;
use crate::error::{Error, Result};
use crate::node::events::{self, Event, EventListener};

/// The ping timeout when the client has no response timeout.
const DEFAULT_PING_TIMEOUT: Duration = Duration::from_secs(5);

/// Shared by the user's [`Subscriber`](super::Subscriber) and its tasks.
pub(crate) struct Shared {
    pub(crate) queue: Queue,
    /// What the user subscribed to (confirmed by the server) and has not
    /// unsubscribed from: [`Subscriber::channels`](super::Subscriber::channels).
    registry: Mutex<Subs>,
    pub(crate) listener: Option<EventListener>,
    pub(crate) overflow: Overflow,
    pub(crate) ping_interval: Duration,
    pub(crate) ping_timeout: Duration,
    /// The waits between reconnect attempts (each link clones it).
    pub(crate) backoff: Box<dyn Backoff>,
    gaps: AtomicU64,
}

impl Shared {
    pub(crate) fn new(
        options: &SubscriberOptions,
        listener: Option<EventListener>,
        response_timeout: Option<Duration>,
        backoff: Box<dyn Backoff>,
    ) -> Arc<Shared> {
        Arc::new(Shared {
            queue: Queue::new(options.capacity),
            registry: Mutex::new(Subs::default()),
            listener,
            overflow: options.overflow,
            ping_interval: options.ping_interval,
            ping_timeout: response_timeout.unwrap_or(DEFAULT_PING_TIMEOUT),
            backoff,
            gaps: AtomicU64::new(0),
        })
    }

    fn registry(&self) -> std::sync::MutexGuard<'_, Subs> {
        self.registry.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn registered(&self, kind: Kind) -> Vec<Bytes> {
        self.registry().get(kind).iter().cloned().collect()
    }

    pub(crate) fn register(&self, kind: Kind, names: &[Bytes]) {
        self.registry().get_mut(kind).extend(names.iter().cloned());
    }

    pub(crate) fn unregister(&self, kind: Kind, names: &[Bytes]) {
        let mut registry = self.registry();
        for name in names {
            registry.get_mut(kind).remove(name);
        }
    }

    pub(crate) fn gaps(&self) -> u64 {
        self.gaps.load(Ordering::Relaxed)
    }

    pub(crate) fn emit(&self, event: Event<'_>) {
        events::emit(self.listener.as_ref(), event);
    }
}

/// Closes the message buffer when dropped: held by the task whose end
/// means no more messages (also when it panics), so the stream ends.
pub(crate) struct CloseOnDrop(pub(crate) Arc<Shared>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.queue.close();
    }
}

/// Aborts a task when dropped: a subscriber's tasks end with it.
pub(crate) struct TaskGuard(pub(crate) tokio::task::JoinHandle<()>);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A set of names of each kind.
#[derive(Debug, Default, Clone)]
pub(crate) struct Subs {
    sets: [BTreeSet<Bytes>; 3],
}

impl Subs {
    fn index(kind: Kind) -> usize {
        match kind {
            Kind::Channel => 0,
            Kind::Pattern => 1,
            Kind::Shard => 2,
        }
    }

    pub(crate) fn get(&self, kind: Kind) -> &BTreeSet<Bytes> {
        &self.sets[Self::index(kind)]
    }

    pub(crate) fn get_mut(&mut self, kind: Kind) -> &mut BTreeSet<Bytes> {
        &mut self.sets[Self::index(kind)]
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.sets.iter().all(BTreeSet::is_empty)
    }

    fn list(&self, kind: Kind) -> Vec<Bytes> {
        self.get(kind).iter().cloned().collect()
    }
}

/// A user's `subscribe` call: answered once the server confirmed every one
/// of its names (on whichever connections they ended up), or at the first
/// error.
pub(crate) struct Ticket {
    state: Mutex<(usize, Option<oneshot::Sender<Result<()>>>)>,
}

impl Ticket {
    pub(crate) fn new(names: usize) -> (Arc<Ticket>, oneshot::Receiver<Result<()>>) {
        let (tx, rx) = oneshot::channel();
        let ticket = Arc::new(Ticket {
            state: Mutex::new((names, Some(tx))),
        });
        if names == 0 {
            ticket.confirm(0);
        }
        (ticket, rx)
    }

    /// `n` more names are confirmed.
    pub(crate) fn confirm(&self, n: usize) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.0 = state.0.saturating_sub(n);
        if state.0 == 0
            && let Some(tx) = state.1.take()
        {
            let _ = tx.send(Ok(()));
        }
    }

    /// The call fails with `err` (unless it was answered already).
    pub(crate) fn fail(&self, err: Error) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = state.1.take() {
            let _ = tx.send(Err(err));
        }
    }
}

/// When and why subscriptions were lost.
#[derive(Debug, Clone)]
pub(crate) struct Outage {
    pub(crate) since: Instant,
    pub(crate) cause: Error,
}

/// The restoring of lost subscriptions: reported with
/// [`Event::Resubscribed`] once every name is confirmed again.
pub(crate) struct Gap {
    outage: Outage,
    state: Mutex<GapState>,
}

struct GapState {
    /// Not confirmed yet.
    pending: Subs,
    /// Everything to report.
    names: Subs,
    reported: bool,
}

impl Gap {
    pub(crate) fn new(outage: Outage, names: Subs) -> Arc<Gap> {
        Arc::new(Gap {
            outage,
            state: Mutex::new(GapState {
                pending: names.clone(),
                names,
                reported: false,
            }),
        })
    }

    pub(crate) fn outage(&self) -> &Outage {
        &self.outage
    }

    /// `names` are confirmed on `addr`; reports the gap when they were the
    /// last. Whether they were.
    pub(crate) fn confirm(&self, kind: Kind, names: &[Bytes], addr: &str, shared: &Shared) -> bool {
        self.settle(kind, names, false, addr, shared)
    }

    /// `names` no longer need restoring (the user unsubscribed from them).
    pub(crate) fn forget(&self, kind: Kind, names: &[Bytes], addr: &str, shared: &Shared) {
        self.settle(kind, names, true, addr, shared);
    }

    fn settle(
        &self,
        kind: Kind,
        names: &[Bytes],
        forget: bool,
        addr: &str,
        shared: &Shared,
    ) -> bool {
        let names = {
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            for name in names {
                state.pending.get_mut(kind).remove(name);
                if forget {
                    state.names.get_mut(kind).remove(name);
                }
            }
            if state.reported || !state.pending.is_empty() {
                return false;
            }
            state.reported = true;
            std::mem::take(&mut state.names)
        };
        if names.is_empty() {
            return true;
        }
        shared.gaps.fetch_add(1, Ordering::Relaxed);
        let (channels, patterns, shards) = (
            names.list(Kind::Channel),
            names.list(Kind::Pattern),
            names.list(Kind::Shard),
        );
        shared.emit(Event::Resubscribed {
            addr,
            channels: &channels,
            patterns: &patterns,
            shard_channels: &shards,
            gap: self.outage.since.elapsed(),
            error: &self.outage.cause,
        });
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_ticket_answers_once_every_name_is_confirmed() {
        let (ticket, mut rx) = Ticket::new(3);
        ticket.confirm(2);
        assert!(rx.try_recv().is_err());
        ticket.confirm(1);
        assert!(rx.await.unwrap().is_ok());
        let (ticket, rx) = Ticket::new(2);
        ticket.fail(Error::new(crate::ErrorKind::NoPermission, "no"));
        ticket.confirm(2);
        assert!(rx.await.unwrap().is_err());
        let (_, rx) = Ticket::new(0);
        assert!(rx.await.unwrap().is_ok());
    }
}
