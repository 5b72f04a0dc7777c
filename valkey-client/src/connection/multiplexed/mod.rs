//! [`Multiplexed`]: one connection shared by many tasks.
//!
//! Callers encode their commands straight into one shared output buffer and
//! queue a reply slot beside them, both under one short lock, so the order of
//! slots is the order of requests on the wire. A driver task swaps the buffer
//! out and writes it with as few syscalls as the socket allows
//! (auto-pipelining), reads replies and fills the slots in order. While a
//! write is in flight new commands pile up and leave together in the next
//! one, so batching grows with load without any timer. Slots are pooled: a
//! request allocates nothing but its reply.
//!
//! A caller alone on the connection does not wait for the driver task: it
//! drives the socket itself until its reply is in, then hands the socket
//! back (see `driver`). Under load the task drives, as above.
//!
//! A caller that stops waiting (its timeout fired) only abandons its slot:
//! the reply is read and discarded when it comes, and every other caller
//! keeps its own reply. A connection with requests outstanding that receives
//! nothing for longer than the response timeout is declared dead; every
//! outstanding caller then gets an error saying whether its request was
//! written.

mod driver;
mod reply;
mod slot;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::BytesMut;
use std::task::Waker;

use tokio::sync::{Semaphore, TryAcquireError, mpsc};

use super::{Connection, READ_CHUNK};
use crate::cmd::Cmd;
use crate::config::Protocol;
use crate::error::{Delivery, Error, ErrorKind, Result};
use crate::pipeline::{Pipeline, Starts};
use crate::resp::Value;

use driver::Driver;
use reply::Reply;
use slot::{BatchFuture, ReplyFuture, Slot, SlotPool};

/// Tuning of a [`Multiplexed`] connection.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct MultiplexOptions {
    /// Requests queued or written but not yet answered, at most. Further
    /// callers wait (bounded by their own timeouts) until replies make room.
    pub max_in_flight: usize,
    /// A connection with requests outstanding that receives nothing for this
    /// long is declared dead (`None`: never).
    pub response_timeout: Option<Duration>,
    /// Where RESP3 out-of-band pushes go; dropped when `None`.
    pub pushes: Option<mpsc::UnboundedSender<Value>>,
}

impl Default for MultiplexOptions {
    fn default() -> Self {
        MultiplexOptions {
            max_in_flight: 16 * 1024,
            response_timeout: None,
            pushes: None,
        }
    }
}

/// Keeps `waker` in `slot`, unless the one there already wakes the same
/// task (cloning a waker costs a reference count; comparing is free).
fn remember(slot: &mut Option<Waker>, waker: &Waker) {
    match slot {
        Some(w) if w.will_wake(waker) => {}
        _ => *slot = Some(waker.clone()),
    }
}

/// A request waiting for its reply.
struct Pending {
    slot: Arc<Slot>,
    /// Offset of the request's first byte in the stream of bytes sent on this
    /// connection, to tell written requests from unwritten ones on failure.
    starts_at: u64,
}

/// What callers and the driver share, under one lock.
struct Queue {
    /// Encoded requests the driver has not taken yet.
    out: BytesMut,
    /// Their reply slots, in the same order.
    waiting: VecDeque<Pending>,
    /// Bytes ever queued: the offset of the next request.
    queued: u64,
    /// Set once the connection takes no new requests, with the reason.
    closed: Option<Error>,
    /// The driver, when it waits for requests. Kept under the same lock as
    /// the queue, so a request can never slip in unnoticed.
    driver: Option<Waker>,
}

struct Shared {
    queue: Mutex<Queue>,
    /// Mirrors `queue.closed.is_none()` for a lock-free check.
    alive: AtomicBool,
    /// One permit per request that may be in flight.
    room: Semaphore,
    slots: SlotPool,
    /// The permits `room` started with.
    max_in_flight: u32,
    addr: String,
    /// The socket and what is in flight on it. Held only for non-blocking
    /// polls, by the driver task or a leading caller. Lock order: `driver`,
    /// then `queue`.
    driver: Mutex<Driver>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_driver(&self) -> MutexGuard<'_, Driver> {
        self.driver.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes room for `permits` requests in flight if there is some now:
    /// `Some(true)`, or `Some(false)` when the connection closed; `None`
    /// means wait with [`Shared::reserve_wait`]. Split so that the common
    /// case builds no future. The driver gives a permit back as it hands
    /// each reply out.
    fn try_reserve(&self, permits: u32) -> Option<bool> {
        match self.room.try_acquire_many(permits) {
            Ok(permit) => {
                permit.forget();
                Some(true)
            }
            Err(TryAcquireError::Closed) => Some(false),
            Err(TryAcquireError::NoPermits) => None,
        }
    }

    /// Waits for replies to make room for `permits` requests; `false` when
    /// the connection closed meanwhile.
    async fn reserve_wait(&self, permits: u32) -> bool {
        match self.room.acquire_many(permits).await {
            Ok(permit) => {
                permit.forget();
                true
            }
            Err(_) => false,
        }
    }

    /// The error of a request whose reply did not come within `limit`.
    /// Whether it was written is unknown here; it is assumed it was.
    fn no_reply_within(&self, limit: Duration) -> Error {
        Error::new(
            ErrorKind::Timeout,
            format!("no reply from {} within {limit:?}", self.addr),
        )
        .with_delivery(Delivery::SentNoReply)
    }

    /// After queuing: a request alone on the connection makes its caller the
    /// driver (`true`); otherwise the driver task is woken if it waits.
    fn lead_or_wake(&self, driver: Option<Waker>, alone: bool) -> bool {
        // `try_lock`: a busy driver means others are in flight anyway.
        let leading = alone
            && self.driver.try_lock().is_ok_and(|mut d| {
                let can = d.can_lead();
                if can {
                    d.lead();
                }
                can
            });
        if !leading && let Some(driver) = driver {
            driver.wake();
        }
        leading
    }

    /// Stops taking requests; requests queued but not taken fail unsent.
    fn close(&self, reason: Error) {
        let (unsent, driver) = {
            let mut queue = self.lock();
            if queue.closed.is_none() {
                queue.closed = Some(reason);
            }
            queue.out.clear();
            (std::mem::take(&mut queue.waiting), queue.driver.take())
        };
        self.alive.store(false, Ordering::Release);
        for pending in unsent {
            self.slots.fill(pending.slot, Err(self.not_sent()));
        }
        self.room.close();
        if let Some(driver) = driver {
            driver.wake();
        }
    }

    fn not_sent(&self) -> Error {
        let reason = self.lock().closed.as_ref().map(|e| e.message().to_string());
        Error::new(
            ErrorKind::Connection,
            format!(
                "connection to {} is closed ({})",
                self.addr,
                reason.as_deref().unwrap_or("closed")
            ),
        )
        .with_delivery(Delivery::NotSent)
    }
}

/// Closes the connection when the last handle goes.
struct Handle {
    shared: Arc<Shared>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared
            .close(Error::new(ErrorKind::Connection, "closed by the client"));
    }
}

/// A handle to a connection shared by many tasks. Cloning is cheap; the
/// connection closes when the last handle is dropped (replies already on
/// their way are still delivered).
#[derive(Clone)]
pub struct Multiplexed {
    handle: Arc<Handle>,
    protocol: Protocol,
}

impl std::fmt::Debug for Multiplexed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Multiplexed")
            .field("addr", &self.shared().addr)
            .field("alive", &self.is_alive())
            .finish()
    }
}

impl Multiplexed {
    /// Starts the driver task for an open, greeted connection. Must be called
    /// within a tokio runtime.
    pub fn new(conn: Connection, options: MultiplexOptions) -> Result<Multiplexed> {
        let (stream, read_buf, limits, protocol, addr) = conn.into_parts().ok_or_else(|| {
            Error::new(
                ErrorKind::Connection,
                "cannot multiplex a closed connection",
            )
        })?;
        let max_in_flight = options
            .max_in_flight
            .clamp(1, Semaphore::MAX_PERMITS.min(u32::MAX as usize))
            as u32;
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                out: BytesMut::with_capacity(READ_CHUNK),
                waiting: VecDeque::new(),
                queued: 0,
                closed: None,
                driver: None,
            }),
            alive: AtomicBool::new(true),
            room: Semaphore::new(max_in_flight as usize),
            slots: SlotPool::default(),
            max_in_flight,
            addr,
            driver: Mutex::new(Driver::new(stream, read_buf, limits, options)),
        });
        tokio::spawn(Driver::run_task(shared.clone()));
        Ok(Multiplexed {
            handle: Arc::new(Handle { shared }),
            protocol,
        })
    }

    fn shared(&self) -> &Shared {
        &self.handle.shared
    }

    /// Whether the connection still takes requests.
    pub fn is_alive(&self) -> bool {
        self.shared().alive.load(Ordering::Acquire)
    }

    /// The protocol agreed in the handshake.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// The server address, for messages.
    pub fn addr(&self) -> &str {
        &self.shared().addr
    }

    /// Sends one command and waits for its reply, at most `timeout`. A server
    /// error reply comes back as an `Err` of its kind.
    pub async fn send(&self, cmd: &Cmd, timeout: Option<Duration>) -> Result<Value> {
        match timeout {
            None => self.exchange(cmd).await,
            Some(limit) => tokio::time::timeout(limit, self.exchange(cmd))
                .await
                .unwrap_or_else(|_| Err(self.shared().no_reply_within(limit))),
        }
    }

    async fn exchange(&self, cmd: &Cmd) -> Result<Value> {
        let shared = self.shared();
        let reserved = match shared.try_reserve(1) {
            Some(reserved) => reserved,
            None => shared.reserve_wait(1).await,
        };
        if !reserved {
            return Err(shared.not_sent());
        }
        let slot = shared.slots.take();
        let (driver, alone) = {
            let mut queue = shared.lock();
            if queue.closed.is_some() {
                drop(queue);
                shared.room.add_permits(1);
                return Err(shared.not_sent());
            }
            let before = queue.out.len();
            cmd.write_to(&mut queue.out);
            let starts_at = queue.queued;
            queue.queued += (queue.out.len() - before) as u64;
            queue.waiting.push_back(Pending {
                slot: slot.clone(),
                starts_at,
            });
            // Only the first request of a batch finds the driver waiting;
            // it takes the rest with it.
            (queue.driver.take(), queue.waiting.len() == 1)
        };
        let leading = shared.lead_or_wake(driver, alone);
        Reply::new(shared, ReplyFuture::new(&shared.slots, slot), leading).await
    }

    /// Sends the commands of a pipeline in one piece and waits for all their
    /// replies, at most `timeout` in all. Each result is one command's reply
    /// or error; a command left without a reply (timeout, lost connection)
    /// gets an error whose [`Delivery`] says whether it was written. The
    /// outer error is for a pipeline that cannot be sent at all (an invalid
    /// one, or more commands than `max_in_flight`).
    pub async fn send_pipeline(
        &self,
        pipeline: &mut Pipeline,
        timeout: Option<Duration>,
    ) -> Result<Vec<Result<Value>>> {
        let (bytes, starts) = pipeline.encoded_from(0)?;
        self.send_encoded(bytes, starts, timeout).await
    }

    /// [`Multiplexed::send_pipeline`] of encoded commands.
    pub(crate) async fn send_encoded(
        &self,
        bytes: &[u8],
        starts: Starts<'_>,
        timeout: Option<Duration>,
    ) -> Result<Vec<Result<Value>>> {
        let shared = self.shared();
        let n = starts.len();
        if n == 0 {
            return Ok(Vec::new());
        }
        let Some(permits) = u32::try_from(n).ok().filter(|&p| p <= shared.max_in_flight) else {
            return Err(Error::new(
                ErrorKind::Data,
                format!(
                    "a pipeline of {n} commands exceeds this connection's max_in_flight ({})",
                    shared.max_in_flight
                ),
            ));
        };
        let reserved = match shared.try_reserve(permits) {
            Some(reserved) => reserved,
            None => shared.reserve_wait(permits).await,
        };
        if !reserved {
            return Ok((0..n).map(|_| Err(shared.not_sent())).collect());
        }
        let slot = shared.slots.take_batch(n);
        let (driver, alone) = {
            let mut queue = shared.lock();
            if queue.closed.is_some() {
                drop(queue);
                shared.room.add_permits(n);
                return Ok((0..n).map(|_| Err(shared.not_sent())).collect());
            }
            let base = queue.queued;
            queue.out.extend_from_slice(bytes);
            queue.queued += bytes.len() as u64;
            for start in starts.iter() {
                queue.waiting.push_back(Pending {
                    slot: slot.clone(),
                    starts_at: base + start as u64,
                });
            }
            (queue.driver.take(), queue.waiting.len() == n)
        };
        let leading = shared.lead_or_wake(driver, alone);
        // One slot gathers every reply and wakes the caller once.
        let mut reply = Reply::new(shared, BatchFuture::new(&shared.slots, slot), leading);
        let Some(limit) = timeout else {
            return Ok(reply.await);
        };
        match tokio::time::timeout(limit, &mut reply).await {
            Ok(replies) => Ok(replies),
            Err(_) => {
                // The replies that came keep their place; the rest fail.
                let mut replies = reply.slot_mut().abandon();
                replies.resize_with(n, || Err(shared.no_reply_within(limit)));
                Ok(replies)
            }
        }
    }

    /// Closes the connection: requests already written still get their
    /// replies; nothing new is taken.
    pub fn close(&self) {
        self.shared()
            .close(Error::new(ErrorKind::Connection, "closed by the client"));
    }
}
