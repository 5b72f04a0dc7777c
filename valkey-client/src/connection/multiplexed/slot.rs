//! Reply slots: where the driver puts a reply and its caller finds it.
//!
//! Slots are pooled and reused, so a request allocates no channel. A caller
//! that stops waiting marks its slot abandoned; the driver then drops the
//! late reply and returns the slot to the pool itself. A pipeline uses one
//! slot for all its commands: the replies gather in it, in order, and its
//! caller is woken once, when the last is in.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use super::remember;
use crate::error::Result;
use crate::resp::Value;

/// Slots kept for reuse, at most; beyond that they are freed.
const MAX_POOLED: usize = 4096;

#[derive(Default)]
struct Cell {
    value: Option<Result<Value>>,
    /// A pipeline's replies so far, when the slot serves `expected > 1`.
    batch: Vec<Result<Value>>,
    /// Replies the slot serves (0 or 1: a single request).
    expected: usize,
    /// Replies delivered to a pipeline's slot, kept or dropped.
    delivered: usize,
    waker: Option<Waker>,
    /// The caller stopped waiting: the driver recycles the slot.
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
}

/// One reply's meeting point between the driver and its caller.
#[derive(Default)]
pub(super) struct Slot {
    cell: Mutex<Cell>,
}

impl Slot {
    fn lock(&self) -> MutexGuard<'_, Cell> {
        // A panic while holding this lock cannot leave the cell half-written
        // in a way that matters: take the data either way.
        self.cell.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Free slots.
#[derive(Default)]
pub(super) struct SlotPool {
    free: Mutex<Vec<Arc<Slot>>>,
}

impl SlotPool {
    pub(super) fn take(&self) -> Arc<Slot> {
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        free.pop().unwrap_or_default()
    }

    /// A slot for the `n` replies of a pipeline.
    pub(super) fn take_batch(&self, n: usize) -> Arc<Slot> {
        let slot = self.take();
        {
            let mut cell = slot.lock();
            cell.expected = n;
            cell.batch.reserve_exact(n);
        }
        slot
    }

    fn give(&self, slot: Arc<Slot>) {
        slot.lock().reset();
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        if free.len() < MAX_POOLED {
            free.push(slot);
        }
    }

    /// Delivers a reply (driver side).
    pub(super) fn fill(&self, slot: Arc<Slot>, result: Result<Value>) {
        let mut cell = slot.lock();
        if cell.expected > 1 {
            cell.delivered += 1;
            let complete = cell.delivered == cell.expected;
            if !cell.abandoned {
                cell.batch.push(result);
            }
            if !complete {
                return;
            }
            if cell.abandoned {
                drop(cell);
                self.give(slot);
                return;
            }
        } else if cell.abandoned {
            drop(cell);
            self.give(slot);
            return;
        } else {
            cell.value = Some(result);
        }
        let waker = cell.waker.take();
        drop(cell);
        drop(slot);
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// Waits for the reply in a slot (caller side).
pub(super) struct ReplyFuture<'a> {
    pool: &'a SlotPool,
    slot: Option<Arc<Slot>>,
}

impl<'a> ReplyFuture<'a> {
    pub(super) fn new(pool: &'a SlotPool, slot: Arc<Slot>) -> ReplyFuture<'a> {
        ReplyFuture {
            pool,
            slot: Some(slot),
        }
    }
}

impl ReplyFuture<'_> {
    /// The reply when it is there, without leaving a waker: for a caller
    /// that drives the socket itself and so knows when to look.
    pub(super) fn try_take(&mut self) -> Option<Result<Value>> {
        self.take_or_register(None)
    }

    #[inline]
    fn take_or_register(&mut self, waker: Option<&Waker>) -> Option<Result<Value>> {
        // `None` after completion: polled again by a caller bug, answered
        // with Pending rather than a panic.
        let slot = self.slot.as_ref()?;
        let mut cell = slot.lock();
        match cell.value.take() {
            Some(result) => {
                drop(cell);
                if let Some(slot) = self.slot.take() {
                    self.pool.give(slot);
                }
                Some(result)
            }
            None => {
                if let Some(waker) = waker {
                    remember(&mut cell.waker, waker);
                }
                None
            }
        }
    }
}

impl Future for ReplyFuture<'_> {
    type Output = Result<Value>;

    #[inline]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<Value>> {
        match self.take_or_register(Some(cx.waker())) {
            Some(result) => Poll::Ready(result),
            None => Poll::Pending,
        }
    }
}

/// A wait on a slot that can also be checked without a waker, by a caller
/// that drives the socket itself and so knows when to look.
pub(super) trait Wait: Future + Unpin {
    /// The outcome when it is there.
    fn try_take(&mut self) -> Option<Self::Output>;
}

impl Wait for ReplyFuture<'_> {
    fn try_take(&mut self) -> Option<Result<Value>> {
        ReplyFuture::try_take(self)
    }
}

impl Wait for BatchFuture<'_> {
    fn try_take(&mut self) -> Option<Vec<Result<Value>>> {
        BatchFuture::try_take(self)
    }
}

/// Waits for all the replies of a pipeline's slot (caller side).
pub(super) struct BatchFuture<'a> {
    pool: &'a SlotPool,
    slot: Option<Arc<Slot>>,
}

impl<'a> BatchFuture<'a> {
    pub(super) fn new(pool: &'a SlotPool, slot: Arc<Slot>) -> BatchFuture<'a> {
        BatchFuture {
            pool,
            slot: Some(slot),
        }
    }

    /// Every reply when all are in, without leaving a waker.
    pub(super) fn try_take(&mut self) -> Option<Vec<Result<Value>>> {
        self.take_or_register(None)
    }

    fn take_or_register(&mut self, waker: Option<&Waker>) -> Option<Vec<Result<Value>>> {
        let slot = self.slot.as_ref()?;
        let mut cell = slot.lock();
        let replies = if cell.expected > 1 {
            (cell.delivered == cell.expected).then(|| std::mem::take(&mut cell.batch))
        } else {
            cell.value.take().map(|v| vec![v])
        };
        if replies.is_none() {
            if let Some(waker) = waker {
                remember(&mut cell.waker, waker);
            }
            return None;
        }
        drop(cell);
        if let Some(slot) = self.slot.take() {
            self.pool.give(slot);
        }
        replies
    }

    /// Stops waiting: the replies that came, in order; the rest will be
    /// dropped as they come.
    pub(super) fn abandon(&mut self) -> Vec<Result<Value>> {
        let Some(slot) = self.slot.take() else {
            return Vec::new();
        };
        let mut cell = slot.lock();
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
            self.pool.give(slot);
        } else {
            cell.abandoned = true;
            cell.waker = None;
        }
        came
    }
}

impl Future for BatchFuture<'_> {
    type Output = Vec<Result<Value>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Vec<Result<Value>>> {
        match self.take_or_register(Some(cx.waker())) {
            Some(replies) => Poll::Ready(replies),
            None => Poll::Pending,
        }
    }
}

impl Drop for BatchFuture<'_> {
    fn drop(&mut self) {
        self.abandon();
    }
}

impl Drop for ReplyFuture<'_> {
    fn drop(&mut self) {
        let Some(slot) = self.slot.take() else {
            return;
        };
        let mut cell = slot.lock();
        if cell.value.is_some() {
            // The reply came but was never read: recycle it here.
            drop(cell);
            self.pool.give(slot);
        } else {
            cell.abandoned = true;
            cell.waker = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{Error, ErrorKind};

    #[tokio::test]
    async fn delivers_and_recycles() {
        let pool = SlotPool::default();
        let slot = pool.take();
        let future = ReplyFuture::new(&pool, slot.clone());
        pool.fill(slot, Ok(Value::Int(7)));
        assert_eq!(future.await.unwrap(), Value::Int(7));
        assert_eq!(pool.free.lock().unwrap().len(), 1);
        // The recycled slot is clean.
        let again = pool.take();
        assert!(again.lock().value.is_none());
        assert!(!again.lock().abandoned);
    }

    #[test]
    fn an_abandoned_slot_is_recycled_by_the_driver() {
        let pool = SlotPool::default();
        let slot = pool.take();
        drop(ReplyFuture::new(&pool, slot.clone()));
        assert_eq!(pool.free.lock().unwrap().len(), 0);
        pool.fill(slot, Err(Error::new(ErrorKind::Timeout, "late")));
        assert_eq!(pool.free.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_batch_wakes_once_complete_and_recycles() {
        let pool = SlotPool::default();
        let slot = pool.take_batch(3);
        let mut batch = BatchFuture::new(&pool, slot.clone());
        pool.fill(slot.clone(), Ok(Value::Int(1)));
        pool.fill(slot.clone(), Ok(Value::Int(2)));
        assert!(batch.try_take().is_none(), "not complete yet");
        pool.fill(slot, Ok(Value::Int(3)));
        let replies = (&mut batch).await;
        assert_eq!(replies.len(), 3);
        assert_eq!(replies[2].as_ref().unwrap(), &Value::Int(3));
        assert_eq!(pool.free.lock().unwrap().len(), 1);
        let again = pool.take();
        assert_eq!(again.lock().expected, 0);
        assert!(again.lock().batch.is_empty());
    }

    #[test]
    fn an_abandoned_batch_keeps_what_came_and_recycles_when_the_rest_comes() {
        let pool = SlotPool::default();
        let slot = pool.take_batch(3);
        let mut batch = BatchFuture::new(&pool, slot.clone());
        pool.fill(slot.clone(), Ok(Value::Int(1)));
        let answered = batch.abandon();
        assert_eq!(answered.len(), 1);
        drop(batch);
        pool.fill(slot.clone(), Ok(Value::Int(2)));
        assert_eq!(pool.free.lock().unwrap().len(), 0);
        pool.fill(slot, Ok(Value::Int(3)));
        assert_eq!(pool.free.lock().unwrap().len(), 1);
    }

    #[test]
    fn a_filled_but_unread_slot_is_recycled_by_the_caller() {
        let pool = SlotPool::default();
        let slot = pool.take();
        let future = ReplyFuture::new(&pool, slot.clone());
        pool.fill(slot, Ok(Value::Nil));
        drop(future);
        assert_eq!(pool.free.lock().unwrap().len(), 1);
    }
}
