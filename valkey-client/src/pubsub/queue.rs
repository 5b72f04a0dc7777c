//! The bounded buffer between the connection tasks and the user: at most
//! `capacity` messages, whatever the policy. A full buffer either stops the
//! task that wants to add (it waits for [`Queue::room`], so it stops reading
//! its socket) or drops the oldest message, counted.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};

use tokio::sync::Notify;

use super::message::Message;

pub(crate) struct Queue {
    capacity: usize,
    state: Mutex<State>,
    /// Woken when a full buffer gets room.
    room: Notify,
}

#[derive(Default)]
struct State {
    items: VecDeque<Message>,
    consumer: Option<Waker>,
    /// No task will add anything any more: the stream ends once empty.
    closed: bool,
    /// Messages dropped so far (oldest first) to make room.
    dropped: u64,
}

/// What became of a message offered to the buffer.
#[derive(Debug)]
pub(crate) enum Push {
    /// It is in the buffer.
    Queued,
    /// It is in the buffer, and the oldest message was dropped for it.
    DroppedOldest,
    /// The buffer is full and dropping was not allowed: the message is
    /// handed back.
    Full(Message),
}

impl Queue {
    pub(crate) fn new(capacity: usize) -> Queue {
        let capacity = capacity.max(1);
        Queue {
            capacity,
            state: Mutex::new(State {
                items: VecDeque::with_capacity(capacity.min(1024)),
                ..State::default()
            }),
            room: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds `msg`; when the buffer is full, drops the oldest message if
    /// `allow_drop`, else hands `msg` back.
    pub(crate) fn push(&self, msg: Message, allow_drop: bool) -> Push {
        let mut state = self.lock();
        let mut outcome = Push::Queued;
        if state.items.len() >= self.capacity {
            if !allow_drop {
                return Push::Full(msg);
            }
            state.items.pop_front();
            state.dropped += 1;
            outcome = Push::DroppedOldest;
        }
        state.items.push_back(msg);
        if let Some(waker) = state.consumer.take() {
            waker.wake();
        }
        outcome
    }

    /// Waits until the buffer has room for one message.
    pub(crate) async fn room(&self) {
        loop {
            let notified = self.room.notified();
            tokio::pin!(notified);
            // Registered before the check, so a pop in between is not missed.
            notified.as_mut().enable();
            if self.lock().items.len() < self.capacity {
                return;
            }
            notified.await;
        }
    }

    /// The next message, if one is buffered.
    pub(crate) fn try_pop(&self) -> Option<Message> {
        let mut state = self.lock();
        let was_full = state.items.len() >= self.capacity;
        let msg = state.items.pop_front();
        drop(state);
        if was_full && msg.is_some() {
            self.room.notify_waiters();
        }
        msg
    }

    /// The next message; `None` once the buffer is closed and empty.
    pub(crate) fn poll_pop(&self, cx: &mut Context<'_>) -> Poll<Option<Message>> {
        if let Some(msg) = self.try_pop() {
            return Poll::Ready(Some(msg));
        }
        let mut state = self.lock();
        // A push between `try_pop` and this lock is seen here.
        if let Some(msg) = state.items.pop_front() {
            return Poll::Ready(Some(msg));
        }
        if state.closed {
            return Poll::Ready(None);
        }
        state.consumer = Some(cx.waker().clone());
        Poll::Pending
    }

    /// Nothing more will be added: the consumer sees the end once it has
    /// taken what is left.
    pub(crate) fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        if let Some(waker) = state.consumer.take() {
            waker.wake();
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().items.len()
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    pub(crate) fn dropped(&self) -> u64 {
        self.lock().dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pubsub::message::MessageKind;
    use std::sync::Arc;

    fn msg(n: u32) -> Message {
        Message::new(MessageKind::Message, "ch", None, n.to_string())
    }

    fn payload(m: Option<Message>) -> Option<String> {
        m.map(|m| m.payload_str().unwrap().to_string())
    }

    #[test]
    fn full_buffer_hands_the_message_back_or_drops_the_oldest() {
        let q = Queue::new(2);
        assert!(matches!(q.push(msg(1), false), Push::Queued));
        assert!(matches!(q.push(msg(2), false), Push::Queued));
        assert!(matches!(q.push(msg(3), false), Push::Full(m) if m == msg(3)));
        assert!(matches!(q.push(msg(3), true), Push::DroppedOldest));
        assert_eq!(q.len(), 2);
        assert_eq!(q.dropped(), 1);
        assert_eq!(payload(q.try_pop()).as_deref(), Some("2"));
        assert_eq!(payload(q.try_pop()).as_deref(), Some("3"));
        assert_eq!(payload(q.try_pop()), None);
    }

    #[tokio::test]
    async fn a_pop_makes_room_for_a_waiting_producer() {
        let q = Arc::new(Queue::new(1));
        q.push(msg(1), false);
        let waiter = tokio::spawn({
            let q = q.clone();
            async move {
                q.room().await;
                q.push(msg(2), false)
            }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        assert_eq!(payload(q.try_pop()).as_deref(), Some("1"));
        assert!(matches!(waiter.await.unwrap(), Push::Queued));
    }

    #[tokio::test]
    async fn the_stream_ends_after_close_once_drained() {
        let q = Arc::new(Queue::new(4));
        q.push(msg(1), false);
        q.close();
        let next = |q: Arc<Queue>| async move { std::future::poll_fn(|cx| q.poll_pop(cx)).await };
        assert_eq!(payload(next(q.clone()).await).as_deref(), Some("1"));
        assert_eq!(payload(next(q.clone()).await), None);
    }
}
