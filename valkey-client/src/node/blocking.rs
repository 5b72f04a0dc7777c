//! Dedicated connections for blocking commands (`BLPOP`, `XREAD ... BLOCK`,
//! `WAIT`, ...) and for `watch`, from a small bounded pool: `run` for one
//! blocking command; `checkout`, the [`Lease`]'s requests and `give_back`
//! for a caller that needs one connection for several requests.
//!
//! A blocking command holds its connection until data arrives or its own
//! timeout passes. On the shared connection it would hold up every other
//! caller, and its long silence would look like a dead server. Here each
//! runs alone on a connection of its own; its own timeout argument extends
//! the response timeout for that request. A connection goes back to the
//! pool only after a complete reply: a call cancelled by its caller (future
//! dropped, deadline) drops its connection, so the server unblocks that
//! client and pops no element that nobody would receive.

use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::{Semaphore, SemaphorePermit};
use tokio::time::Instant;

use crate::cmd::Cmd;
use crate::command::BlockingTimeout;
use crate::config::ConnectionConfig;
use crate::connection::Connection;
use crate::error::{Delivery, Error, ErrorKind, Result};
use crate::pipeline::Pipeline;
use crate::resp::Value;

/// The sooner of `deadline` and `wait` from now; `None` when neither bounds
/// the wait (a wait too long to add is no bound).
pub(crate) fn sooner(deadline: Option<Instant>, wait: Option<Duration>) -> Option<Instant> {
    let after_wait = wait.and_then(|w| Instant::now().checked_add(w));
    match (deadline, after_wait) {
        (Some(d), Some(w)) => Some(d.min(w)),
        (d, w) => d.or(w),
    }
}

/// Idle connections kept open for the next blocking call, at most.
const MAX_IDLE: usize = 2;

pub(crate) struct BlockingPool {
    config: ConnectionConfig,
    /// One permit per connection that may be open (busy or idle).
    room: Semaphore,
    max: usize,
    idle: Mutex<Vec<Connection>>,
}

impl BlockingPool {
    /// A pool of at most `max` connections opened with `config`.
    pub(crate) fn new(config: ConnectionConfig, max: usize) -> BlockingPool {
        let max = max.clamp(1, Semaphore::MAX_PERMITS);
        BlockingPool {
            // The pool applies the timeouts per request itself: a blocking
            // command's silence is no sign of a dead connection.
            config: config.response_timeout(None),
            room: Semaphore::new(max),
            max,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Runs one blocking command on a dedicated connection. `response_timeout`
    /// is the client's; the command's own `timeout` is added to it, and
    /// `deadline` (the call's) bounds everything, the wait for a free
    /// connection included.
    pub(crate) async fn run(
        &self,
        cmd: &Cmd,
        timeout: BlockingTimeout,
        response_timeout: Option<Duration>,
        deadline: Option<Instant>,
    ) -> Result<Value> {
        let mut lease = self.checkout(deadline).await?;
        let result = lease
            .request(cmd, reply_limit(timeout, response_timeout, deadline))
            .await;
        self.give_back(lease);
        result
    }

    /// A dedicated connection for the caller alone, until it is given back
    /// ([`BlockingPool::give_back`]) or dropped; `deadline` bounds the wait
    /// for a free one and the connect.
    pub(crate) async fn checkout(&self, deadline: Option<Instant>) -> Result<Lease<'_>> {
        let addr = self.config.addr();
        let permit = match deadline {
            None => self.room.acquire().await,
            Some(deadline) => match tokio::time::timeout_at(deadline, self.room.acquire()).await {
                Ok(permit) => permit,
                Err(_) => {
                    return Err(Error::new(
                        ErrorKind::Timeout,
                        format!(
                            "all {} dedicated connections to {addr} stayed busy until the deadline",
                            self.max
                        ),
                    ));
                }
            },
        }
        .map_err(|_| Error::new(ErrorKind::Connection, "the client is closed"))?;
        let conn = match self.take_idle(deadline).await {
            Some(conn) => conn,
            None => self.open(deadline).await?,
        };
        Ok(Lease {
            conn,
            addr: addr.to_string(),
            in_doubt: false,
            _permit: permit,
        })
    }

    /// Takes a leased connection back for the next caller, unless it broke
    /// or a request on it was cut short (its late reply would reach the
    /// next caller): then it is closed. The permit goes with it either way.
    pub(crate) fn give_back(&self, lease: Lease<'_>) {
        if lease.in_doubt || lease.conn.is_broken() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < MAX_IDLE {
            idle.push(lease.conn);
        }
    }

    /// An idle connection that still answers. It is checked with a PING
    /// first (within the connect timeout): a connection the server closed
    /// while idle would otherwise fail the blocking command after sending
    /// it, and a command like `BLPOP` is not retried then.
    async fn take_idle(&self, deadline: Option<Instant>) -> Option<Connection> {
        loop {
            let mut conn = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop()?;
            let ping = Cmd::new("PING");
            let check = conn.request(&ping);
            let alive = match sooner(deadline, self.config.connect_timeout_value()) {
                None => check.await.is_ok(),
                Some(limit) => matches!(tokio::time::timeout_at(limit, check).await, Ok(Ok(_))),
            };
            if alive {
                return Some(conn);
            }
        }
    }

    /// Opens a connection within the connect timeout and the deadline.
    async fn open(&self, deadline: Option<Instant>) -> Result<Connection> {
        let connect = Connection::connect(&self.config);
        let result = match deadline {
            None => connect.await,
            Some(deadline) => tokio::time::timeout_at(deadline, connect)
                .await
                .unwrap_or_else(|_| {
                    Err(Error::new(
                        ErrorKind::Timeout,
                        format!(
                            "the call's deadline passed while connecting to {}",
                            self.config.addr()
                        ),
                    ))
                }),
        };
        result.map_err(|e| e.with_delivery(Delivery::NotSent))
    }
}

/// How long a request may wait for its reply: the client's response
/// timeout, extended by a blocking command's own timeout, within `deadline`.
pub(crate) fn reply_limit(
    timeout: BlockingTimeout,
    response_timeout: Option<Duration>,
    deadline: Option<Instant>,
) -> Option<Instant> {
    let wait = match timeout {
        // Waits until data comes: only the call's deadline bounds it.
        BlockingTimeout::Forever => None,
        BlockingTimeout::After(own) => response_timeout.map(|rt| own.saturating_add(rt)),
        BlockingTimeout::Unparsed => response_timeout,
    };
    sooner(deadline, wait)
}

/// A dedicated connection taken from the pool, with its permit.
pub(crate) struct Lease<'a> {
    conn: Connection,
    addr: String,
    /// A request was cut short by its time limit: its reply may still come.
    in_doubt: bool,
    _permit: SemaphorePermit<'a>,
}

impl Lease<'_> {
    /// One command, its reply awaited until `limit`.
    pub(crate) async fn request(&mut self, cmd: &Cmd, limit: Option<Instant>) -> Result<Value> {
        let request = self.conn.request(cmd);
        within(limit, &mut self.in_doubt, &self.addr, request).await
    }

    /// Every command of `pipe` in one write, the replies awaited until
    /// `limit`. The outer error is the connection's.
    pub(crate) async fn pipeline(
        &mut self,
        pipe: &mut Pipeline,
        limit: Option<Instant>,
    ) -> Result<Vec<Result<Value>>> {
        let request = self.conn.send_pipeline(pipe);
        within(limit, &mut self.in_doubt, &self.addr, request).await
    }

    /// Whether the connection can still be used.
    pub(crate) fn is_usable(&self) -> bool {
        !self.in_doubt && !self.conn.is_broken()
    }

    /// The server's address.
    pub(crate) fn addr(&self) -> &str {
        &self.addr
    }
}

/// Awaits `request` until `limit`; a request cut short leaves its
/// connection `in_doubt`.
async fn within<T>(
    limit: Option<Instant>,
    in_doubt: &mut bool,
    addr: &str,
    request: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    let Some(limit) = limit else {
        return request.await;
    };
    match tokio::time::timeout_at(limit, request).await {
        Ok(result) => result,
        Err(_) => {
            *in_doubt = true;
            Err(Error::new(
                ErrorKind::Timeout,
                format!("no reply from {addr} on a dedicated connection in time"),
            )
            .with_delivery(Delivery::SentNoReply))
        }
    }
}
