//! [`Reply`]: a caller waiting for its reply, driving the socket itself when
//! it leads (it was alone on the connection when it sent).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::Shared;
use super::slot::Wait;

/// Waits on a slot (one reply, or a pipeline's), leading if told to.
pub(super) struct Reply<'a, W: Wait> {
    shared: &'a Shared,
    slot: W,
    /// This caller drives the socket until its reply is in.
    leading: bool,
}

impl<'a, W: Wait> Reply<'a, W> {
    pub(super) fn new(shared: &'a Shared, slot: W, leading: bool) -> Reply<'a, W> {
        Reply {
            shared,
            slot,
            leading,
        }
    }

    /// The wait itself, to abandon it after a timeout.
    pub(super) fn slot_mut(&mut self) -> &mut W {
        &mut self.slot
    }
}

impl<W: Wait> Future for Reply<'_, W> {
    type Output = W::Output;

    #[inline]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<W::Output> {
        if !self.leading {
            return Pin::new(&mut self.slot).poll(cx);
        }
        let shared = self.shared;
        let mut driver = shared.lock_driver();
        // The leader fills its own slot, so it looks there after driving
        // and leaves no waker in it: a wake from itself would only cost the
        // scheduler an extra pass.
        driver.poll_as_leader(shared, cx);
        let Some(result) = self.slot.try_take() else {
            if driver.is_leader() {
                return Poll::Pending;
            }
            // The connection ended without an answer here yet (it comes from
            // the closing path): wait like any other caller.
            drop(driver);
            self.leading = false;
            return Pin::new(&mut self.slot).poll(cx);
        };
        driver.hand_back(shared);
        drop(driver);
        self.leading = false;
        Poll::Ready(result)
    }
}

impl<W: Wait> Drop for Reply<'_, W> {
    fn drop(&mut self) {
        if self.leading {
            // Cancelled while leading (a timeout): the task takes over.
            self.shared.lock_driver().abandon_lead();
        }
    }
}
