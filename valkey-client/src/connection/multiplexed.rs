//! [`Multiplexed`]: one connection shared by many tasks.
//!
//! Callers hand encoded commands to a driver task through a bounded channel.
//! The driver appends every command waiting in the channel to one write buffer
//! and writes it with as few syscalls as the socket allows (auto-pipelining),
//! and hands replies back in order. While a write is in flight, new commands
//! pile up and leave together in the next one, so batching grows with load
//! without any timer.
//!
//! A caller that stops waiting (its timeout fired) only drops its receiver:
//! the reply is read and discarded when it comes, and every other caller keeps
//! its own reply. A connection with requests outstanding that receives nothing
//! for longer than the response timeout is declared dead; every outstanding
//! caller then gets an error saying whether its request was written.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use std::pin::Pin;
use std::task::Poll;

use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt, WriteHalf};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::{Connection, READ_CHUNK, Stream};
use crate::config::Protocol;
use crate::error::{Delivery, Error, ErrorKind, Result};
use crate::resp::{self, Limits, Value};

/// Tuning of a [`Multiplexed`] connection.
#[derive(Debug, Clone)]
pub struct MultiplexOptions {
    /// Requests written but not yet answered, at most. Further callers wait
    /// (bounded by their own timeouts) until replies make room.
    pub max_in_flight: usize,
    /// Requests queued for the driver, at most, before callers wait.
    pub queue_size: usize,
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
            queue_size: 1024,
            response_timeout: None,
            pushes: None,
        }
    }
}

/// Replies handed out before the driver lets their callers run, at least.
/// Their next requests are then written at once, so the server works on
/// them while the driver hands out the rest: client and server overlap
/// instead of taking turns. The chunk is half the requests in flight, so two
/// batches are always on the way.
const MIN_DISPATCH_CHUNK: usize = 16;

/// Write-buffer size past which the driver stops taking new requests until
/// the socket has taken some: bounds memory under a slow server.
const MAX_WRITE_BUF: usize = 1 << 20;

struct Request {
    bytes: Bytes,
    reply: oneshot::Sender<Result<Value>>,
}

struct Pending {
    reply: oneshot::Sender<Result<Value>>,
    /// Offset of the request's first byte in the stream of written bytes, to
    /// tell written requests from unwritten ones when the connection fails.
    starts_at: u64,
}

struct Shared {
    alive: AtomicBool,
    /// Wakes the driver when a handle closes the connection.
    closed: tokio::sync::Notify,
    addr: String,
}

/// A handle to a connection shared by many tasks. Cloning is cheap; the
/// connection closes when the last handle is dropped.
#[derive(Clone)]
pub struct Multiplexed {
    tx: mpsc::Sender<Request>,
    shared: Arc<Shared>,
    protocol: Protocol,
}

impl std::fmt::Debug for Multiplexed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Multiplexed")
            .field("addr", &self.shared.addr)
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
        let (tx, rx) = mpsc::channel(options.queue_size.max(1));
        let shared = Arc::new(Shared {
            alive: AtomicBool::new(true),
            closed: tokio::sync::Notify::new(),
            addr,
        });
        let driver = Driver {
            rx,
            pending: VecDeque::new(),
            read_buf,
            write_buf: BytesMut::with_capacity(READ_CHUNK),
            written: 0,
            queued: 0,
            limits,
            options,
            shared: shared.clone(),
            draining: false,
            unread_replies: false,
            dispatch_chunk: MIN_DISPATCH_CHUNK,
        };
        tokio::spawn(driver.run(stream));
        Ok(Multiplexed {
            tx,
            shared,
            protocol,
        })
    }

    /// Whether the connection still takes requests.
    pub fn is_alive(&self) -> bool {
        self.shared.alive.load(Ordering::Acquire)
    }

    /// The protocol agreed in the handshake.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// The server address, for messages.
    pub fn addr(&self) -> &str {
        &self.shared.addr
    }

    /// Sends one encoded command and waits for its reply, at most `timeout`.
    /// A server error reply comes back as an `Err` of its kind.
    pub async fn send(&self, bytes: Bytes, timeout: Option<Duration>) -> Result<Value> {
        let (reply, rx) = oneshot::channel();
        let request = Request { bytes, reply };
        let exchange = async {
            if self.tx.send(request).await.is_err() {
                return Err(self.closed_error());
            }
            match rx.await {
                Ok(result) => result,
                // The driver ended without answering: it never took it.
                Err(_) => Err(self.closed_error()),
            }
        };
        match timeout {
            None => exchange.await,
            Some(limit) => match tokio::time::timeout(limit, exchange).await {
                Ok(result) => result,
                // Whether it was written is unknown here; assume it was.
                Err(_) => Err(Error::new(
                    ErrorKind::Timeout,
                    format!("no reply from {} within {limit:?}", self.shared.addr),
                )
                .with_delivery(Delivery::SentNoReply)),
            },
        }
    }

    /// Closes the connection: requests already written still get their
    /// replies; nothing new is taken.
    pub fn close(&self) {
        self.shared.alive.store(false, Ordering::Release);
        self.shared.closed.notify_one();
    }

    fn closed_error(&self) -> Error {
        Error::new(
            ErrorKind::Connection,
            format!("connection to {} is closed", self.shared.addr),
        )
    }
}

struct Driver {
    rx: mpsc::Receiver<Request>,
    pending: VecDeque<Pending>,
    read_buf: BytesMut,
    write_buf: BytesMut,
    /// Bytes written to the socket so far.
    written: u64,
    /// Bytes ever appended to `write_buf`.
    queued: u64,
    limits: Limits,
    options: MultiplexOptions,
    shared: Arc<Shared>,
    /// No new requests; finish the outstanding ones, then close.
    draining: bool,
    /// `read_buf` may hold complete replies not yet handed out.
    unread_replies: bool,
    /// Replies to hand out before yielding, fixed when a read brings data.
    dispatch_chunk: usize,
}

impl Driver {
    async fn run(mut self, stream: Stream) {
        let (mut reader, mut writer) = tokio::io::split(stream);
        let mut last_read = Instant::now();
        let watchdog = tokio::time::sleep(Duration::from_secs(3600));
        tokio::pin!(watchdog);
        let mut watchdog_armed = false;

        let failure = loop {
            if !self.shared.alive.load(Ordering::Acquire) && !self.draining {
                self.start_draining();
            }
            if self.draining && self.pending.is_empty() {
                break None;
            }
            // Arm the dead-connection watchdog when requests are outstanding.
            if let Some(limit) = self.options.response_timeout {
                if !self.pending.is_empty() && !watchdog_armed {
                    watchdog.as_mut().reset(far_or(Instant::now(), limit));
                    watchdog_armed = true;
                } else if self.pending.is_empty() {
                    watchdog_armed = false;
                }
            }
            if self.unread_replies {
                match self.dispatch_replies(self.dispatch_chunk) {
                    Err(e) => break Some(e),
                    Ok(more) => self.unread_replies = more,
                }
                if self.unread_replies {
                    tokio::task::yield_now().await;
                    self.take_waiting();
                    if let Err(e) = self.write_now(&mut writer).await {
                        break Some(e);
                    }
                    continue;
                }
            }
            let can_take = self.can_take();
            tokio::select! {
                biased;
                read = reader.read_buf(&mut self.read_buf) => {
                    match read {
                        Ok(0) => break Some(self.eof_error()),
                        Ok(_) => {
                            last_read = Instant::now();
                            if !self.unread_replies {
                                self.unread_replies = true;
                                self.dispatch_chunk = MIN_DISPATCH_CHUNK.max(self.pending.len() / 2);
                            }
                            if self.read_buf.capacity() - self.read_buf.len() < READ_CHUNK / 4 {
                                self.read_buf.reserve(READ_CHUNK);
                            }
                        }
                        Err(e) => break Some(Error::io(format!("read from {}", self.shared.addr), e)),
                    }
                }
                wrote = writer.write(&self.write_buf), if !self.write_buf.is_empty() => {
                    if let Err(e) = self.wrote(wrote) {
                        break Some(e);
                    }
                }
                request = self.rx.recv(), if can_take => {
                    match request {
                        Some(request) => self.take(request),
                        // Every handle is gone: finish what was asked, then stop.
                        None => self.start_draining(),
                    }
                }
                _ = self.shared.closed.notified(), if !self.draining => {
                    self.start_draining();
                }
                _ = &mut watchdog, if watchdog_armed => {
                    let limit = self.options.response_timeout.unwrap_or_default();
                    if last_read.elapsed() >= limit {
                        break Some(Error::new(
                            ErrorKind::Timeout,
                            format!("{} answered nothing for {limit:?}; connection declared dead", self.shared.addr),
                        ));
                    }
                    watchdog.as_mut().reset(far_or(last_read, limit));
                }
            }
        };
        self.shared.alive.store(false, Ordering::Release);
        let _ = writer.shutdown().await;
        if let Some(err) = failure {
            tracing::debug!(addr = %self.shared.addr, error = %err, "multiplexed connection failed");
            self.fail_all(&err);
        }
    }

    fn can_take(&self) -> bool {
        !self.draining
            && self.pending.len() < self.options.max_in_flight
            && self.write_buf.len() < MAX_WRITE_BUF
    }

    /// Takes one request and every other one already waiting, up to the limits.
    fn take(&mut self, first: Request) {
        self.push(first);
        self.take_waiting();
    }

    /// Takes the requests already waiting in the channel, up to the limits.
    fn take_waiting(&mut self) {
        while self.can_take() {
            match self.rx.try_recv() {
                Ok(request) => self.push(request),
                Err(_) => break,
            }
        }
    }

    /// Writes what the socket takes right now, without waiting for it.
    async fn write_now(&mut self, writer: &mut WriteHalf<Stream>) -> Result<()> {
        if self.write_buf.is_empty() {
            return Ok(());
        }
        let buf = &self.write_buf;
        let attempt = std::future::poll_fn(|cx| {
            Poll::Ready(match Pin::new(&mut *writer).poll_write(cx, buf) {
                Poll::Ready(result) => Some(result),
                Poll::Pending => None,
            })
        })
        .await;
        match attempt {
            Some(result) => self.wrote(result),
            None => Ok(()),
        }
    }

    /// Accounts for one write to the socket.
    fn wrote(&mut self, result: std::io::Result<usize>) -> Result<()> {
        match result {
            Ok(0) => Err(Error::io(
                format!("write to {}", self.shared.addr),
                std::io::ErrorKind::WriteZero.into(),
            )),
            Ok(n) => {
                let _ = self.write_buf.split_to(n);
                self.written += n as u64;
                if self.write_buf.is_empty() {
                    // Reuse the allocation instead of growing a new one.
                    self.write_buf.clear();
                }
                Ok(())
            }
            Err(e) => Err(Error::io(format!("write to {}", self.shared.addr), e)),
        }
    }

    fn push(&mut self, request: Request) {
        // A caller that already gave up is not sent at all.
        if request.reply.is_closed() {
            return;
        }
        self.pending.push_back(Pending {
            reply: request.reply,
            starts_at: self.queued,
        });
        self.queued += request.bytes.len() as u64;
        self.write_buf.extend_from_slice(&request.bytes);
    }

    /// Hands out at most `budget` replies from `read_buf`; `Ok(true)` when
    /// more may be waiting there.
    fn dispatch_replies(&mut self, budget: usize) -> Result<bool> {
        let mut handed = 0;
        while let Some(value) = resp::decode(&mut self.read_buf, &self.limits)? {
            if let Value::Push(_) = value {
                if let Some(pushes) = &self.options.pushes {
                    let _ = pushes.send(value);
                }
                continue;
            }
            let Some(pending) = self.pending.pop_front() else {
                return Err(Error::new(
                    ErrorKind::InvalidResponse,
                    format!("{} sent a reply nobody asked for", self.shared.addr),
                ));
            };
            let result = match value {
                Value::Error(server) => {
                    let err = Error::from_server(server);
                    if err.closes_connection() && !self.draining {
                        // Later requests go to a fresh connection; the ones
                        // already written still get their own replies.
                        self.start_draining();
                    }
                    Err(err)
                }
                value => Ok(value),
            };
            // The caller may have timed out; its reply is simply dropped.
            let _ = pending.reply.send(result);
            handed += 1;
            if handed == budget {
                return Ok(!self.read_buf.is_empty());
            }
        }
        Ok(false)
    }

    fn start_draining(&mut self) {
        self.draining = true;
        self.shared.alive.store(false, Ordering::Release);
        self.rx.close();
        // Requests still in the channel were never taken: they go back unsent.
        while let Ok(request) = self.rx.try_recv() {
            let _ = request.reply.send(Err(not_sent(&self.shared.addr)));
        }
    }

    fn eof_error(&self) -> Error {
        let detail = if self.read_buf.is_empty() {
            "closed the connection"
        } else {
            "closed the connection in the middle of a reply"
        };
        Error::new(
            ErrorKind::Connection,
            format!("{} {detail}", self.shared.addr),
        )
    }

    fn fail_all(&mut self, err: &Error) {
        for pending in self.pending.drain(..) {
            let delivery = if pending.starts_at < self.written {
                Delivery::SentNoReply
            } else {
                Delivery::NotSent
            };
            let _ = pending.reply.send(Err(err.clone().with_delivery(delivery)));
        }
        self.rx.close();
        while let Ok(request) = self.rx.try_recv() {
            let _ = request.reply.send(Err(not_sent(&self.shared.addr)));
        }
    }
}

/// `at + limit`, or a day from `at` when the sum does not fit (a huge limit).
fn far_or(at: Instant, limit: Duration) -> Instant {
    at.checked_add(limit)
        .unwrap_or_else(|| at + Duration::from_secs(86_400))
}

fn not_sent(addr: &str) -> Error {
    Error::new(
        ErrorKind::Connection,
        format!("connection to {addr} closed before the request was written"),
    )
}
