//! The task that owns the socket of a [`Multiplexed`](super::Multiplexed)
//! connection: it writes what callers queued and hands replies back in order.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::Poll;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt, WriteHalf};
use tokio::time::Instant;

use super::{MultiplexOptions, Pending, Shared};
use crate::connection::{READ_CHUNK, Stream};
use crate::error::{Delivery, Error, ErrorKind, Result};
use crate::resp::{self, Limits, Value};

/// Replies handed out before the driver lets their callers run, at least.
/// Their next requests are then written at once, so the server works on them
/// while the driver hands out the rest: client and server overlap instead of
/// taking turns. The chunk is half the requests in flight, so two batches
/// are on the way.
const MIN_DISPATCH_CHUNK: usize = 16;

pub(super) struct Driver {
    shared: Arc<Shared>,
    /// Written (or being written), not yet answered, in order.
    pending: VecDeque<Pending>,
    read_buf: BytesMut,
    write_buf: BytesMut,
    /// Bytes written to the socket so far.
    written: u64,
    limits: Limits,
    options: MultiplexOptions,
    /// No new requests; finish the outstanding ones, then close.
    draining: bool,
    /// `read_buf` may hold complete replies not yet handed out.
    unread_replies: bool,
    /// Replies to hand out before yielding, fixed when a read brings data.
    dispatch_chunk: usize,
}

impl Driver {
    pub(super) fn new(
        shared: Arc<Shared>,
        read_buf: BytesMut,
        limits: Limits,
        options: MultiplexOptions,
    ) -> Driver {
        Driver {
            shared,
            pending: VecDeque::new(),
            unread_replies: !read_buf.is_empty(),
            read_buf,
            write_buf: BytesMut::with_capacity(READ_CHUNK),
            written: 0,
            limits,
            options,
            draining: false,
            dispatch_chunk: MIN_DISPATCH_CHUNK,
        }
    }

    pub(super) async fn run(mut self, stream: Stream) {
        let (mut reader, mut writer) = tokio::io::split(stream);
        let mut last_read = Instant::now();
        let watchdog = tokio::time::sleep(Duration::from_secs(3600));
        tokio::pin!(watchdog);
        let mut watchdog_armed = false;

        let failure = loop {
            if !self.draining && !self.shared.alive.load(Ordering::Acquire) {
                self.draining = true;
            }
            if !self.draining {
                self.take_queued();
            }
            if self.draining && self.pending.is_empty() {
                break None;
            }
            // Arm the dead-connection watchdog when requests are outstanding.
            if let Some(limit) = self.options.response_timeout {
                if self.pending.is_empty() {
                    watchdog_armed = false;
                } else if !watchdog_armed {
                    watchdog.as_mut().reset(far_or(Instant::now(), limit));
                    watchdog_armed = true;
                }
            }
            if self.unread_replies {
                match self.dispatch_replies(self.dispatch_chunk) {
                    Err(e) => break Some(e),
                    Ok(more) => self.unread_replies = more,
                }
                if self.unread_replies {
                    // Let the callers just answered run, then send what they
                    // asked next before handing out more replies.
                    tokio::task::yield_now().await;
                    self.take_queued();
                    if let Err(e) = self.write_now(&mut writer).await {
                        break Some(e);
                    }
                    continue;
                }
            }
            tokio::select! {
                biased;
                wrote = writer.write(&self.write_buf), if !self.write_buf.is_empty() => {
                    if let Err(e) = self.wrote(wrote) {
                        break Some(e);
                    }
                }
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
                // New requests or a close: the loop top takes care of both.
                _ = self.shared.wake_driver.notified(), if !self.draining => {}
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
        let reason = failure
            .clone()
            .unwrap_or_else(|| Error::new(ErrorKind::Connection, "closed by the client"));
        self.shared.close(reason);
        let _ = writer.shutdown().await;
        if let Some(err) = failure {
            tracing::debug!(addr = %self.shared.addr, error = %err, "multiplexed connection failed");
            self.fail_pending(&err);
        }
    }

    /// Moves the requests callers queued into the write buffer and the
    /// pending list.
    fn take_queued(&mut self) {
        let mut queue = self.shared.lock();
        if queue.waiting.is_empty() {
            return;
        }
        if self.write_buf.is_empty() {
            // Swap buffers: no copy, and both keep their capacity.
            std::mem::swap(&mut self.write_buf, &mut queue.out);
        } else {
            self.write_buf.extend_from_slice(&queue.out);
            queue.out.clear();
        }
        self.pending.extend(queue.waiting.drain(..));
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
                // `advance`, not `split_to`: splitting would make the buffer
                // shared, and that costs an allocation per write.
                self.write_buf.advance(n);
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

    /// Hands out at most `budget` replies from `read_buf`; `Ok(true)` when
    /// more may be waiting there.
    fn dispatch_replies(&mut self, budget: usize) -> Result<bool> {
        let mut handed = 0;
        // On an error the connection closes, and its permits with it.
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
                        self.draining = true;
                        self.shared.close(err.clone());
                    }
                    Err(err)
                }
                value => Ok(value),
            };
            self.shared.slots.fill(pending.slot, result);
            handed += 1;
            if handed == budget {
                break;
            }
        }
        // One call for the whole chunk: giving permits back takes a lock.
        self.shared.room.add_permits(handed);
        Ok(handed == budget && !self.read_buf.is_empty())
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

    /// Fails every request taken from the queue, telling written from unwritten.
    fn fail_pending(&mut self, err: &Error) {
        for pending in self.pending.drain(..) {
            let delivery = if pending.starts_at < self.written {
                Delivery::SentNoReply
            } else {
                Delivery::NotSent
            };
            self.shared
                .slots
                .fill(pending.slot, Err(err.clone().with_delivery(delivery)));
        }
    }
}

/// `at + limit`, or a day from `at` when the sum does not fit (a huge limit).
fn far_or(at: Instant, limit: Duration) -> Instant {
    at.checked_add(limit)
        .unwrap_or_else(|| at + Duration::from_secs(86_400))
}
