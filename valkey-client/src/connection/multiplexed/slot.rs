//! Reply slots: where the driver puts a reply and its caller finds it.
//!
//! Slots are pooled and reused, so a request allocates no channel. A caller
//! that stops waiting marks its slot abandoned; the driver then drops the
//! late reply and returns the slot to the pool itself.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use crate::error::{Error, Result};
use crate::resp::Value;

/// Slots kept for reuse, at most; beyond that they are freed.
const MAX_POOLED: usize = 4096;

#[derive(Default)]
struct Cell {
    value: Option<Result<Value>>,
    waker: Option<Waker>,
    /// The caller stopped waiting: the driver recycles the slot.
    abandoned: bool,
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

    /// `n` slots, under one lock of the pool.
    pub(super) fn take_many(&self, n: usize) -> Vec<Arc<Slot>> {
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        let from_pool = free.len().saturating_sub(n);
        let mut slots: Vec<Arc<Slot>> = free.drain(from_pool..).collect();
        drop(free);
        slots.resize_with(n, Arc::default);
        slots
    }

    /// The replies in `slots`, which were waited for without wakers (the
    /// caller knows they are in, or gives up on them): a slot with no reply
    /// yet is abandoned with `missing` as its result; the others go back to
    /// the pool under one lock.
    pub(super) fn take_replies(
        &self,
        slots: Vec<Arc<Slot>>,
        missing: impl Fn() -> Error,
    ) -> Vec<Result<Value>> {
        let mut recycled = Vec::with_capacity(slots.len());
        let replies = slots
            .into_iter()
            .map(|slot| {
                let mut cell = slot.lock();
                match cell.value.take() {
                    Some(result) => {
                        *cell = Cell::default();
                        drop(cell);
                        recycled.push(slot);
                        result
                    }
                    None => {
                        cell.abandoned = true;
                        cell.waker = None;
                        Err(missing())
                    }
                }
            })
            .collect();
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        let room = MAX_POOLED.saturating_sub(free.len());
        free.extend(recycled.into_iter().take(room));
        replies
    }

    fn give(&self, slot: Arc<Slot>) {
        *slot.lock() = Cell::default();
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        if free.len() < MAX_POOLED {
            free.push(slot);
        }
    }

    /// Delivers a reply (driver side).
    pub(super) fn fill(&self, slot: Arc<Slot>, result: Result<Value>) {
        let mut cell = slot.lock();
        if cell.abandoned {
            drop(cell);
            self.give(slot);
            return;
        }
        cell.value = Some(result);
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
                    match &cell.waker {
                        Some(w) if w.will_wake(waker) => {}
                        _ => cell.waker = Some(waker.clone()),
                    }
                }
                None
            }
        }
    }
}

impl Future for ReplyFuture<'_> {
    type Output = Result<Value>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<Value>> {
        match self.take_or_register(Some(cx.waker())) {
            Some(result) => Poll::Ready(result),
            None => Poll::Pending,
        }
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
    use crate::error::ErrorKind;

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

    #[test]
    fn replies_taken_together_and_missing_ones_abandoned() {
        let pool = SlotPool::default();
        let slots = pool.take_many(3);
        pool.fill(slots[0].clone(), Ok(Value::Int(1)));
        pool.fill(slots[1].clone(), Ok(Value::Int(2)));
        let third = slots[2].clone();
        let replies = pool.take_replies(slots, || Error::new(ErrorKind::Timeout, "late"));
        assert_eq!(replies[1].as_ref().unwrap(), &Value::Int(2));
        assert_eq!(replies[2].as_ref().unwrap_err().kind(), ErrorKind::Timeout);
        assert_eq!(pool.free.lock().unwrap().len(), 2);
        // The late reply recycles its abandoned slot.
        pool.fill(third, Ok(Value::Int(3)));
        assert_eq!(pool.free.lock().unwrap().len(), 3);
        assert_eq!(pool.take_many(5).len(), 5);
        assert!(pool.free.lock().unwrap().is_empty());
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
