//! Mailboxes: where the driver puts a reply and its caller finds it.
//!
//! Mailboxes are pooled and reused, so a request allocates no channel. A
//! caller that stops waiting marks its mailbox abandoned; the driver then
//! drops the late reply and returns the mailbox to the pool itself. A
//! pipeline uses one mailbox for all its commands: the replies gather in it,
//! in order, and its caller is woken once, when the last is in.

use std::future::Future;
use std::marker::PhantomData;
use std::ops::Deref;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use super::{Shared, remember};
use crate::error::Result;
use crate::resp::Value;

/// Mailboxes kept for reuse, at most; beyond that they are freed.
const MAX_POOLED: usize = 4096;

#[derive(Default)]
pub(super) struct Cell {
    value: Option<Result<Value>>,
    /// A pipeline's replies so far, when the mailbox serves `expected > 1`.
    batch: Vec<Result<Value>>,
    /// Replies the mailbox serves (0 or 1: a single request).
    expected: usize,
    /// Replies delivered to a pipeline's mailbox, kept or dropped.
    delivered: usize,
    waker: Option<Waker>,
    /// The caller stopped waiting: the driver recycles the mailbox.
    abandoned: bool,
}

impl Cell {
    /// Clean for the next request. Field by field: the value and batch are
    /// empty by now on the usual path, and rebuilding the whole cell would
    /// drop and recreate each of them.
    fn reset(&mut self) {
        if self.value.is_some() {
            self.value = None;
        }
        if !self.batch.is_empty() {
            self.batch.clear();
        }
        self.waker = None;
        self.expected = 0;
        self.delivered = 0;
        self.abandoned = false;
    }

    /// Whether every reply the mailbox serves has been delivered.
    fn complete(&self) -> bool {
        if self.expected > 1 {
            self.delivered == self.expected
        } else {
            self.value.is_some()
        }
    }
}

/// One request's (or one pipeline's) meeting point between the driver and
/// its caller.
#[derive(Default)]
pub(super) struct Mailbox {
    cell: Mutex<Cell>,
}

impl Mailbox {
    fn lock(&self) -> MutexGuard<'_, Cell> {
        // A panic while holding this lock cannot leave the cell half-written
        // in a way that matters: take the data either way.
        self.cell.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether nobody waits for this mailbox any more.
    pub(super) fn is_abandoned(&self) -> bool {
        self.lock().abandoned
    }
}

/// Free mailboxes.
#[derive(Default)]
pub(super) struct MailboxPool {
    free: Mutex<Vec<Arc<Mailbox>>>,
}

impl MailboxPool {
    pub(super) fn take(&self) -> Arc<Mailbox> {
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        free.pop().unwrap_or_default()
    }

    /// A mailbox for the `n` replies of a pipeline.
    pub(super) fn take_batch(&self, n: usize) -> Arc<Mailbox> {
        let mailbox = self.take();
        {
            let mut cell = mailbox.lock();
            cell.expected = n;
            cell.batch.reserve_exact(n);
        }
        mailbox
    }

    fn give(&self, mailbox: Arc<Mailbox>) {
        mailbox.lock().reset();
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        if free.len() < MAX_POOLED {
            free.push(mailbox);
        }
    }

    /// Delivers a reply (driver side); `true` when it completed the mailbox,
    /// so that its caller can go on.
    pub(super) fn fill(&self, mailbox: Arc<Mailbox>, result: Result<Value>) -> bool {
        let mut cell = mailbox.lock();
        if cell.expected > 1 {
            cell.delivered += 1;
            if !cell.abandoned {
                cell.batch.push(result);
            }
            if cell.delivered < cell.expected {
                return false;
            }
        } else if !cell.abandoned {
            cell.value = Some(result);
        }
        if cell.abandoned {
            drop(cell);
            self.give(mailbox);
            return false;
        }
        let waker = cell.waker.take();
        drop(cell);
        drop(mailbox);
        if let Some(waker) = waker {
            waker.wake();
        }
        true
    }
}

/// What a caller takes out of a complete mailbox: one reply, or a
/// pipeline's replies in order.
pub(super) trait Outcome: Sized {
    /// The outcome, when the mailbox is complete.
    fn take(cell: &mut Cell) -> Option<Self>;
}

impl Outcome for Result<Value> {
    #[inline]
    fn take(cell: &mut Cell) -> Option<Self> {
        cell.value.take()
    }
}

impl Outcome for Vec<Result<Value>> {
    fn take(cell: &mut Cell) -> Option<Self> {
        if cell.expected > 1 {
            cell.complete().then(|| std::mem::take(&mut cell.batch))
        } else {
            cell.value.take().map(|v| vec![v])
        }
    }
}

/// Waits for the outcome in a mailbox (caller side). Dropping it abandons
/// the mailbox; the driver recycles it when the late replies come.
///
/// `S` holds the connection: a borrow for the calls made through
/// [`Multiplexed`](super::Multiplexed)'s methods, an `Arc` for a reply that
/// outlives them ([`super::QueuedReply`]).
pub(super) struct ReplyFuture<S: Deref<Target = Shared>, O: Outcome> {
    shared: S,
    mailbox: Option<Arc<Mailbox>>,
    _outcome: PhantomData<fn() -> O>,
}

impl<S: Deref<Target = Shared>, O: Outcome> ReplyFuture<S, O> {
    pub(super) fn new(shared: S, mailbox: Arc<Mailbox>) -> ReplyFuture<S, O> {
        ReplyFuture {
            shared,
            mailbox: Some(mailbox),
            _outcome: PhantomData,
        }
    }

    /// What holds the connection.
    pub(super) fn holder(&self) -> &S {
        &self.shared
    }

    /// Stops waiting: the replies that came, in order; the rest will be
    /// dropped as they come.
    pub(super) fn abandon(&mut self) -> Vec<Result<Value>> {
        let Some(mailbox) = self.mailbox.take() else {
            return Vec::new();
        };
        let mut cell = mailbox.lock();
        let mut came = std::mem::take(&mut cell.batch);
        if let Some(value) = cell.value.take() {
            came.push(value);
        }
        let complete = if cell.expected > 1 {
            cell.delivered == cell.expected
        } else {
            !came.is_empty()
        };
        if complete {
            drop(cell);
            self.shared.mailboxes.give(mailbox);
        } else {
            cell.abandoned = true;
            cell.waker = None;
            drop(cell);
            // A closing connection ends as soon as nobody waits for it.
            self.shared.wake_driver_if_closing();
        }
        came
    }
}

impl<S: Deref<Target = Shared> + Unpin, O: Outcome> Future for ReplyFuture<S, O> {
    type Output = O;

    #[inline]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<O> {
        // `None` after completion: polled again by a caller bug, answered
        // with Pending rather than a panic.
        let Some(mailbox) = self.mailbox.as_ref() else {
            return Poll::Pending;
        };
        let mut cell = mailbox.lock();
        match O::take(&mut cell) {
            Some(outcome) => {
                drop(cell);
                if let Some(mailbox) = self.mailbox.take() {
                    self.shared.mailboxes.give(mailbox);
                }
                Poll::Ready(outcome)
            }
            None => {
                remember(&mut cell.waker, cx.waker());
                Poll::Pending
            }
        }
    }
}

impl<S: Deref<Target = Shared>, O: Outcome> Drop for ReplyFuture<S, O> {
    fn drop(&mut self) {
        if self.mailbox.is_some() {
            self.abandon();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_completes_when_every_reply_is_in() {
        let pool = MailboxPool::default();
        let mailbox = pool.take_batch(3);
        pool.fill(mailbox.clone(), Ok(Value::Int(1)));
        pool.fill(mailbox.clone(), Ok(Value::Int(2)));
        assert!(<Vec<Result<Value>>>::take(&mut mailbox.lock()).is_none());
        pool.fill(mailbox.clone(), Ok(Value::Int(3)));
        let replies = <Vec<Result<Value>>>::take(&mut mailbox.lock()).unwrap();
        assert_eq!(replies.len(), 3);
        assert_eq!(replies[2].as_ref().unwrap(), &Value::Int(3));
    }

    #[test]
    fn an_abandoned_mailbox_is_recycled_by_the_driver() {
        let pool = MailboxPool::default();
        let mailbox = pool.take();
        mailbox.lock().abandoned = true;
        pool.fill(mailbox, Ok(Value::Nil));
        assert_eq!(pool.free.lock().unwrap().len(), 1);
        let again = pool.take();
        assert!(!again.is_abandoned(), "recycled mailboxes are clean");
        assert!(again.lock().value.is_none());
    }

    #[test]
    fn an_abandoned_batch_is_recycled_only_when_its_last_reply_comes() {
        let pool = MailboxPool::default();
        let mailbox = pool.take_batch(2);
        mailbox.lock().abandoned = true;
        pool.fill(mailbox.clone(), Ok(Value::Int(1)));
        assert_eq!(pool.free.lock().unwrap().len(), 0);
        pool.fill(mailbox, Ok(Value::Int(2)));
        assert_eq!(pool.free.lock().unwrap().len(), 1);
        assert_eq!(pool.take().lock().expected, 0);
    }
}
