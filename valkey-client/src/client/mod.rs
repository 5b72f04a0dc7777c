//! [`Valkey`]: the standalone client. It keeps one live multiplexed
//! connection, reconnects with a backoff, and applies the `Retry` policy to
//! each command under one overall deadline.

mod budget;
mod builder;
mod events;
mod manager;
mod policy;

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::cmd::{Cmd, ToArg};
use crate::command::{self, RepeatSafety};
use crate::error::{Delivery, Error, ErrorKind, Result};
use crate::from_value::FromValue;
use crate::resp::Value;
use crate::retry::Retry;

pub use budget::RetryBudget;
pub use builder::ValkeyBuilder;
pub use events::{Event, EventListener, GiveUpReason};

use budget::Bucket;
use events::emit;
use manager::Manager;
use policy::{Refusal, may_retry};

/// The standalone async client. Cheap to clone: clones share the connection,
/// the retry budget and the event listener.
///
/// ```no_run
/// # async fn demo() -> valkey_client::Result<()> {
/// use valkey_client::{ErrorKind, ExponentialBackoff, Retry, Valkey};
///
/// // Run 3 retries with exponential backoff strategy
/// let retry = Retry::new(ExponentialBackoff::default(), 3);
/// // Valkey client with retries on custom errors
/// let r = Valkey::builder()
///     .host("localhost")
///     .port(6379)
///     .retry(retry.clone())
///     .retry_on_error([ErrorKind::BusyLoading, ErrorKind::Connection, ErrorKind::Timeout])
///     .build()
///     .await?;
/// // Valkey client with retries on Timeout only
/// let r_only_timeout = Valkey::builder()
///     .host("localhost")
///     .port(6379)
///     .retry(retry)
///     .retry_on_timeout(true)
///     .build()
///     .await?;
/// r.set("greeting", "hello").await?;
/// let v: Option<String> = r_only_timeout.get("greeting").await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Valkey {
    inner: Arc<Inner>,
}

struct Inner {
    manager: Arc<Manager>,
    retry: Option<Retry>,
    retry_non_idempotent: bool,
    response_timeout: Option<Duration>,
    request_timeout: Option<Duration>,
    budget: Option<Bucket>,
    listener: Option<EventListener>,
}

/// Options for one call, overriding the client's.
///
/// ```
/// use std::time::Duration;
/// use valkey_client::CallOptions;
/// let opts = CallOptions::new().retry_non_idempotent(true).timeout(Duration::from_secs(2));
/// ```
#[derive(Debug, Clone, Default)]
pub struct CallOptions {
    retry_non_idempotent: Option<bool>,
    timeout: Option<Duration>,
}

impl CallOptions {
    /// The client's settings.
    pub fn new() -> CallOptions {
        CallOptions::default()
    }

    /// Retry this call even when it may have run and is not safe to repeat
    /// (e.g. an `INCR` whose reply was lost): the caller accepts that it may
    /// be applied twice.
    pub fn retry_non_idempotent(mut self, allow: bool) -> CallOptions {
        self.retry_non_idempotent = Some(allow);
        self
    }

    /// The overall deadline of this call: all attempts and backoff sleeps.
    pub fn timeout(mut self, timeout: Duration) -> CallOptions {
        self.timeout = Some(timeout);
        self
    }
}

impl std::fmt::Debug for Valkey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Valkey")
            .field("addr", &self.inner.manager.addr())
            .field("retry", &self.inner.retry)
            .finish()
    }
}

impl Valkey {
    /// A builder with every option.
    pub fn builder() -> ValkeyBuilder {
        ValkeyBuilder::new()
    }

    /// Connects to `host:port` with the defaults (no retries).
    pub async fn connect(host: &str, port: u16) -> Result<Valkey> {
        Valkey::builder().host(host).port(port).build().await
    }

    /// Connects with a URL; see [`ConnectionConfig::from_url`](crate::ConnectionConfig::from_url).
    pub async fn from_url(url: &str) -> Result<Valkey> {
        Valkey::builder().url(url)?.build().await
    }

    /// The retry in force, after resolving `retry`, `retry_on_error` and
    /// `retry_on_timeout`; `None` when nothing is retried.
    pub fn effective_retry(&self) -> Option<&Retry> {
        self.inner.retry.as_ref()
    }

    /// Runs a command and converts its reply.
    pub async fn request<T: FromValue>(&self, cmd: &Cmd) -> Result<T> {
        T::from_value(self.execute(cmd, &CallOptions::default()).await?)
    }

    /// Runs a command with per-call options and converts its reply.
    pub async fn request_with<T: FromValue>(&self, cmd: &Cmd, options: &CallOptions) -> Result<T> {
        T::from_value(self.execute(cmd, options).await?)
    }

    /// `GET key`.
    pub async fn get<T: FromValue>(&self, key: impl ToArg) -> Result<T> {
        self.request(&Cmd::new("GET").arg(key)).await
    }

    /// `SET key value`.
    pub async fn set(&self, key: impl ToArg, value: impl ToArg) -> Result<()> {
        self.request(&Cmd::new("SET").arg(key).arg(value)).await
    }

    /// `INCR key`: the new value. Not safe to repeat: after a lost reply it
    /// is not retried unless the call or client opts in.
    pub async fn incr(&self, key: impl ToArg) -> Result<i64> {
        self.request(&Cmd::new("INCR").arg(key)).await
    }

    /// `DEL key [key ...]`: how many keys were removed.
    pub async fn del<K: ToArg>(&self, keys: impl IntoIterator<Item = K>) -> Result<i64> {
        self.request(&Cmd::new("DEL").args(keys)).await
    }

    /// `PING`.
    pub async fn ping(&self) -> Result<()> {
        self.request(&Cmd::new("PING")).await
    }

    async fn execute(&self, cmd: &Cmd, options: &CallOptions) -> Result<Value> {
        let inner = &*self.inner;
        let deadline = options
            .timeout
            .or(inner.request_timeout)
            .and_then(|limit| Instant::now().checked_add(limit));
        // The happy path: one attempt, no retry state built.
        let err = match self.attempt(cmd, deadline).await {
            Ok(value) => return Ok(value),
            Err(err) => err,
        };
        self.retry_loop(cmd, deadline, options, err).await
    }

    async fn retry_loop(
        &self,
        cmd: &Cmd,
        deadline: Option<Instant>,
        options: &CallOptions,
        mut err: Error,
    ) -> Result<Value> {
        let inner = &*self.inner;
        let listener = inner.listener.as_ref();
        let command = cmd.name();
        let give_up = |err: Error, attempts: u32, reason: GiveUpReason| {
            emit(
                listener,
                Event::GaveUp {
                    command,
                    attempts,
                    reason,
                    error: &err,
                },
            );
            Err(err)
        };
        inner.manager.on_failure(&err);
        let Some(retry) = &inner.retry else {
            return give_up(err, 1, GiveUpReason::NotRetried);
        };
        let opted_in = options
            .retry_non_idempotent
            .unwrap_or(inner.retry_non_idempotent);
        let safe = command::repeat_safety(cmd) != RepeatSafety::NotSafe;
        let mut backoff = retry.backoff();
        backoff.reset();
        let mut failures: u32 = 0;
        loop {
            failures = failures.saturating_add(1);
            match may_retry(retry, &err, safe, opted_in) {
                Ok(()) => {}
                Err(Refusal::KindNotRetried) => {
                    return give_up(err, failures, GiveUpReason::NotRetried);
                }
                Err(Refusal::MayHaveRun) => {
                    return give_up(err, failures, GiveUpReason::MayHaveRun);
                }
            }
            if retry.retries().is_some_and(|max| failures > max) {
                return give_up(err, failures, GiveUpReason::RetriesExhausted);
            }
            // The first retry of a call is free (at most doubling the load);
            // later ones that reach the server draw on the shared budget.
            if failures > 1
                && err.delivery() != Delivery::NotSent
                && inner.budget.as_ref().is_some_and(|b| !b.try_take())
            {
                return give_up(err, failures, GiveUpReason::BudgetExhausted);
            }
            let wait = backoff.compute(failures);
            if deadline.is_some_and(|d| d.saturating_duration_since(Instant::now()) <= wait) {
                return give_up(err, failures, GiveUpReason::DeadlineReached);
            }
            emit(
                listener,
                Event::Retry {
                    command,
                    attempt: failures,
                    wait,
                    error: &err,
                },
            );
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
            match self.attempt(cmd, deadline).await {
                Ok(value) => return Ok(value),
                Err(next) => {
                    inner.manager.on_failure(&next);
                    err = next;
                }
            }
        }
    }

    /// One attempt: get a live connection (opening one if needed) and send.
    /// Bounded by the response timeout and what is left of the deadline.
    async fn attempt(&self, cmd: &Cmd, deadline: Option<Instant>) -> Result<Value> {
        let inner = &*self.inner;
        let Some(deadline) = deadline else {
            let conn = inner.manager.get().await?;
            return conn.send(cmd, inner.response_timeout).await;
        };
        let addr = inner.manager.addr();
        let left = deadline.saturating_duration_since(Instant::now());
        let conn = match tokio::time::timeout(left, inner.manager.get()).await {
            Ok(conn) => conn?,
            Err(_) => return Err(deadline_error(addr)),
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(deadline_error(addr));
        }
        let limit = inner.response_timeout.map_or(left, |t| t.min(left));
        conn.send(cmd, Some(limit)).await
    }
}

/// The error for a call whose deadline passed before its request was sent.
fn deadline_error(addr: &str) -> Error {
    Error::new(
        ErrorKind::Timeout,
        format!("the call's deadline passed before {addr} answered"),
    )
    .with_delivery(Delivery::NotSent)
}
