//! [`Multiplexed`]: one connection shared by many tasks.
//!
//! Callers encode their commands straight into one shared output buffer and
//! queue a mailbox beside them, both under one short lock, so the order of
//! mailboxes is the order of requests on the wire. A driver task swaps the
//! buffer out and writes it with as few syscalls as the socket allows
//! (auto-pipelining), reads replies and fills the mailboxes in order. While a
//! write is in flight new commands pile up and leave together in the next
//! one, so batching grows with load without any timer. Mailboxes are pooled:
//! a request allocates nothing but its reply.
//!
//! # Invariants
//!
//! - **Only the driver task touches the socket.** A caller queues its request,
//!   wakes the task if it waits, and then only waits on its own mailbox. So no
//!   caller's progress depends on any other caller's future being polled: a
//!   request future polled once and then held (in a `select!`, a collection,
//!   a busy task) delays nobody but itself. (An earlier version let a lone
//!   caller drive the socket itself to save a task switch; a held leader
//!   stalled every other caller, so that path is gone.) On a multi-thread
//!   runtime the wake-up of the driver is followed by one of a guard task,
//!   so that the driver never sits in the LIFO slot of a worker that the
//!   waking caller then keeps busy (see [`Shared::wake_driver`]).
//! - **Lock order:** a mailbox's cell lock is never held while taking the
//!   queue lock, and the queue lock is held only for a copy and a push.
//! - **One mailbox, one answer:** the driver hands out every reply to the
//!   mailbox at the head of its pending list; a caller that stops waiting
//!   (its timeout fired, its future was dropped) only abandons its mailbox,
//!   the reply is read and discarded when it comes, and every other caller
//!   keeps its own reply.
//! - **Every wait ends:** a connection with requests outstanding that
//!   receives nothing for longer than the response timeout is declared dead,
//!   and every outstanding caller gets an error saying whether its request
//!   was written. A closed connection finishes the requests already written,
//!   and ends at once when nobody waits for any of them.
//! - **Bounded:** at most `max_in_flight` requests are queued or unanswered;
//!   further callers wait for room within their own timeouts.

mod driver;
mod mailbox;
mod push_handler;

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::BytesMut;
use tokio::sync::{Semaphore, TryAcquireError};
use tokio::time::Instant;

use super::{Connection, READ_CHUNK};
use crate::cmd::Cmd;
use crate::command::{self, ConnectionUse};
use crate::config::Protocol;
use crate::error::{Delivery, Error, ErrorKind, Result};
use crate::pipeline::{Pipeline, Starts};
use crate::resp::Value;

use driver::Driver;
use mailbox::{Mailbox, MailboxPool, ReplyFuture};
pub use push_handler::PushHandler;

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
    /// Where RESP3 out-of-band pushes go; dropped when `None`. The
    /// handler runs on the connection's driver task and must not block
    /// (see [`PushHandler`]). The shared connection carries no
    /// subscription (those are refused), so pushes here are rare: client
    /// side caching invalidations (`CLIENT TRACKING`), for example.
    pub pushes: Option<PushHandler>,
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
    mailbox: Arc<Mailbox>,
    /// Offset of the request's first byte in the stream of bytes sent on this
    /// connection, to tell written requests from unwritten ones on failure.
    starts_at: u64,
}

/// What callers and the driver share, under one lock.
struct Queue {
    /// Encoded requests the driver has not taken yet.
    out: BytesMut,
    /// Their mailboxes, in the same order.
    waiting: VecDeque<Pending>,
    /// Bytes ever queued: the offset of the next request.
    queued: u64,
    /// Set once the connection takes no new requests, with the reason.
    closed: Option<Error>,
    /// The driver, when it waits for requests (or, once closed, for the
    /// last caller to stop waiting). Kept under the same lock as the queue,
    /// so a request can never slip in unnoticed.
    driver: Option<Waker>,
}

struct Shared {
    queue: Mutex<Queue>,
    /// Mirrors `queue.closed.is_none()` for a lock-free check.
    alive: AtomicBool,
    /// One permit per request that may be in flight.
    room: Semaphore,
    mailboxes: MailboxPool,
    /// The permits `room` started with.
    max_in_flight: u32,
    addr: String,
    /// On a multi-thread runtime: the waker of a task that does nothing,
    /// woken right after the driver (see [`Shared::wake_driver`]).
    lifo_guard: OnceLock<Waker>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes room for `permits` requests in flight, waiting until `deadline`
    /// at most: `Ok(true)`, `Ok(false)` when the connection closed, or the
    /// timeout error. The common case, room now, builds no future. The
    /// driver gives a permit back as it hands each reply out.
    async fn reserve(&self, permits: u32, deadline: Option<Instant>) -> Result<bool> {
        match self.room.try_acquire_many(permits) {
            Ok(permit) => {
                permit.forget();
                return Ok(true);
            }
            Err(TryAcquireError::Closed) => return Ok(false),
            Err(TryAcquireError::NoPermits) => {}
        }
        let wait = self.room.acquire_many(permits);
        let acquired = match deadline {
            None => wait.await,
            Some(deadline) => match tokio::time::timeout_at(deadline, wait).await {
                Ok(acquired) => acquired,
                Err(_) => return Err(self.no_room_before_deadline()),
            },
        };
        match acquired {
            Ok(permit) => {
                permit.forget();
                Ok(true)
            }
            Err(_) => Ok(false),
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

    /// The error of a request that found no room in flight before its
    /// deadline: it was never queued.
    fn no_room_before_deadline(&self) -> Error {
        Error::new(
            ErrorKind::Timeout,
            format!(
                "no room among the {} requests in flight to {} before the deadline",
                self.max_in_flight, self.addr
            ),
        )
        .with_delivery(Delivery::NotSent)
    }

    /// Wakes the driver task, if it waits for requests.
    ///
    /// On a multi-thread runtime, tokio puts a task woken from a worker into
    /// that worker's LIFO slot, which other workers never steal
    /// (tokio-rs/tokio#4941). A caller that queues a request and then keeps
    /// its worker busy (CPU work, a blocking call) would hold the driver,
    /// and every other caller, until it yields. Waking the guard task right
    /// after pushes the driver out of the slot into the worker's run queue,
    /// where an idle worker takes it; the guard is what stays stuck, and it
    /// has nothing to do.
    fn wake_driver(&self, driver: Option<Waker>) {
        if let Some(driver) = driver {
            driver.wake();
            if let Some(guard) = self.lifo_guard.get() {
                guard.wake_by_ref();
            }
        }
    }

    /// After a caller abandoned its mailbox: a closing driver looks whether
    /// anybody still waits.
    fn wake_driver_if_closing(&self) {
        if !self.alive.load(Ordering::Acquire) {
            let driver = self.lock().driver.take();
            self.wake_driver(driver);
        }
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
            self.mailboxes.fill(pending.mailbox, Err(self.not_sent()));
        }
        self.room.close();
        self.wake_driver(driver);
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

    /// Queues encoded requests (`starts` gives each one's offset in `bytes`)
    /// with one mailbox for all of them, and wakes the driver. `None` when
    /// the connection closed; the reserved room is given back then.
    fn enqueue(
        &self,
        mailbox: &Arc<Mailbox>,
        write: impl FnOnce(&mut BytesMut),
        starts: impl Iterator<Item = usize>,
        permits: u32,
    ) -> Option<()> {
        let driver = {
            let mut queue = self.lock();
            if queue.closed.is_some() {
                drop(queue);
                self.room.add_permits(permits as usize);
                return None;
            }
            let before = queue.out.len();
            write(&mut queue.out);
            let base = queue.queued;
            queue.queued += (queue.out.len() - before) as u64;
            for start in starts {
                queue.waiting.push_back(Pending {
                    mailbox: mailbox.clone(),
                    starts_at: base + start as u64,
                });
            }
            // Only the first request of a batch finds the driver waiting;
            // it takes the rest with it.
            queue.driver.take()
        };
        self.wake_driver(driver);
        Some(())
    }
}

/// The guard task of [`Shared::wake_driver`]: it only lends its waker, and
/// ends with the connection.
async fn lifo_guard(shared: Weak<Shared>) {
    std::future::poll_fn(|cx| match shared.upgrade() {
        Some(shared) if shared.alive.load(Ordering::Acquire) => {
            let _ = shared.lifo_guard.set(cx.waker().clone());
            Poll::Pending
        }
        _ => Poll::Ready(()),
    })
    .await
}

/// The reply to a request queued by [`Multiplexed::try_queue`]. Dropping
/// it abandons the request's mailbox, as for any caller that stops waiting.
pub(crate) struct QueuedReply(ReplyFuture<Held, Result<Value>>);

impl QueuedReply {
    /// The connection the request was queued on.
    pub(crate) fn connection(&self) -> &Multiplexed {
        &self.0.holder().0
    }
}

impl Future for QueuedReply {
    type Output = Result<Value>;

    #[inline]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<Value>> {
        Pin::new(&mut self.0).poll(cx)
    }
}

/// A connection handle held by a reply in flight: while it waits, the
/// connection stays open (a retired connection still delivers the replies
/// to requests written on it).
struct Held(Multiplexed);

impl std::ops::Deref for Held {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        self.0.shared()
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
///
/// It carries any command whose effect does not depend on the state of its
/// connection; the [`Valkey`](crate::Valkey) client refuses the others
/// before they get here (see [`command::connection_use`](crate::command)).
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
    pub fn new(mut conn: Connection, options: MultiplexOptions) -> Result<Multiplexed> {
        // A reply already read with the handshake's would go to the first
        // request queued: refuse the connection instead.
        conn.check_no_stray_reply()?;
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
            mailboxes: MailboxPool::default(),
            max_in_flight,
            addr,
            lifo_guard: OnceLock::new(),
        });
        let runtime = tokio::runtime::Handle::current();
        if runtime.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread {
            runtime.spawn(lifo_guard(Arc::downgrade(&shared)));
        }
        let driver = Driver::new(stream, read_buf, limits, options);
        runtime.spawn(driver.run(shared.clone()));
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

    /// Whether `other` is a handle to the same connection.
    pub fn same_connection(&self, other: &Multiplexed) -> bool {
        Arc::ptr_eq(&self.handle, &other.handle)
    }

    /// The protocol agreed in the handshake.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// The server address, for messages.
    pub fn addr(&self) -> &str {
        &self.shared().addr
    }

    /// Sends one command and waits for its reply, at most `timeout` in all
    /// (the wait for room in flight included). A server error reply comes
    /// back as an `Err` of its kind.
    ///
    /// A command that changes the state of its connection (`SUBSCRIBE`,
    /// `MULTI`, `SELECT`, `CLIENT REPLY`, ...: [`command::state_commands`])
    /// is refused with [`ErrorKind::StatefulCommand`]: it would change the
    /// connection under every other caller. A blocking command is sent, but
    /// holds up every other caller until it returns; the
    /// [`Valkey`](crate::Valkey) client runs those on dedicated connections.
    pub async fn send(&self, cmd: &Cmd, timeout: Option<Duration>) -> Result<Value> {
        if let ConnectionUse::State(state) = command::connection_use(cmd) {
            return Err(state.refusal());
        }
        self.send_unchecked(cmd, timeout).await
    }

    /// [`Multiplexed::send`] of a command the caller has classified already.
    pub(crate) async fn send_unchecked(
        &self,
        cmd: &Cmd,
        timeout: Option<Duration>,
    ) -> Result<Value> {
        let Some((limit, deadline)) =
            timeout.and_then(|limit| Some((limit, Instant::now().checked_add(limit)?)))
        else {
            return self.exchange(cmd, None).await;
        };
        tokio::time::timeout_at(deadline, self.exchange(cmd, Some(deadline)))
            .await
            .unwrap_or_else(|_| Err(self.shared().no_reply_within(limit)))
    }

    /// Queues `cmd` when there is room in flight right now, without
    /// waiting and without a timeout: the reply to come is a named future
    /// that holds this connection (so a typed call need not box its first
    /// attempt). `None` when there is no room now or the connection is
    /// closed; nothing was queued then.
    pub(crate) fn try_queue(&self, cmd: &Cmd) -> Option<QueuedReply> {
        let shared = self.shared();
        match shared.room.try_acquire_many(1) {
            Ok(permit) => permit.forget(),
            Err(_) => return None,
        }
        let mailbox = shared.mailboxes.take();
        shared.enqueue(&mailbox, |out| cmd.write_to(out), std::iter::once(0), 1)?;
        Some(QueuedReply(ReplyFuture::new(Held(self.clone()), mailbox)))
    }

    async fn exchange(&self, cmd: &Cmd, deadline: Option<Instant>) -> Result<Value> {
        let shared = self.shared();
        if !shared.reserve(1, deadline).await? {
            return Err(shared.not_sent());
        }
        let mailbox = shared.mailboxes.take();
        if shared
            .enqueue(&mailbox, |out| cmd.write_to(out), std::iter::once(0), 1)
            .is_none()
        {
            return Err(shared.not_sent());
        }
        ReplyFuture::new(shared, mailbox).await
    }

    /// Sends the commands of a pipeline in one piece and waits for all their
    /// replies, at most `timeout` in all (the wait for room in flight
    /// included). Each result is one command's reply or error; a command
    /// left without a reply (timeout, lost connection) gets an error whose
    /// [`Delivery`] says whether it was written. The outer error is for a
    /// pipeline that cannot be sent at all (an invalid one, more commands
    /// than `max_in_flight`, or a connection-state command outside an exact
    /// `MULTI ... EXEC`).
    pub async fn send_pipeline(
        &self,
        pipeline: &mut Pipeline,
        timeout: Option<Duration>,
    ) -> Result<Vec<Result<Value>>> {
        // Connection-state commands are refused, as in `send`, unless the
        // pipeline is exactly one MULTI ... EXEC transaction.
        pipeline.shared_use()?;
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
                ErrorKind::Config,
                format!(
                    "a pipeline of {n} commands exceeds this connection's max_in_flight ({})",
                    shared.max_in_flight
                ),
            ));
        };
        let deadline = timeout.and_then(|limit| Instant::now().checked_add(limit));
        let all = |err: Error| (0..n).map(|_| Err(err.clone())).collect();
        match shared.reserve(permits, deadline).await {
            Ok(true) => {}
            Ok(false) => return Ok(all(shared.not_sent())),
            Err(err) => return Ok(all(err)),
        }
        let mailbox = shared.mailboxes.take_batch(n);
        let queued = shared.enqueue(
            &mailbox,
            |out| out.extend_from_slice(bytes),
            starts.iter(),
            permits,
        );
        if queued.is_none() {
            return Ok(all(shared.not_sent()));
        }
        // One mailbox gathers every reply and wakes the caller once.
        let mut reply = ReplyFuture::<_, Vec<Result<Value>>>::new(shared, mailbox);
        let (Some(limit), Some(deadline)) = (timeout, deadline) else {
            return Ok(reply.await);
        };
        match tokio::time::timeout_at(deadline, &mut reply).await {
            Ok(replies) => Ok(replies),
            Err(_) => {
                // The replies that came keep their place; the rest fail.
                let mut replies = reply.abandon();
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
