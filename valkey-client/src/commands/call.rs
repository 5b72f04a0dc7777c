//! [`Call`]: one command of a typed method, to `.await`, with options for
//! this call only.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use crate::client::CallOptions;
use crate::cmd::Cmd;
use crate::error::{Error, Result};
use crate::from_value::FromValue;
use crate::resp::Value;

pub(crate) mod sealed {
    use super::*;

    /// A client that runs one command under its retry policy. Sealed: only
    /// the crate's clients implement it.
    pub trait Execute: Sync {
        /// A call's first attempt, its request already queued (see
        /// `client/first.rs` and `cluster/client/first.rs`).
        type First: Send;

        /// Queues `cmd` now when nothing needs waiting for; `None` sends
        /// the call down the general path.
        fn first_attempt(&self, cmd: &Cmd, options: &CallOptions) -> Option<Self::First>;

        /// Polls a first attempt for its reply.
        fn poll_first(&self, first: &mut Self::First, cx: &mut Context<'_>) -> Poll<Result<Value>>;

        /// The rest of a call whose first attempt failed with `err`.
        fn after_first<'a>(
            &'a self,
            cmd: &'a Cmd,
            options: &'a CallOptions,
            first: Self::First,
            err: Error,
        ) -> impl Future<Output = Result<Value>> + Send + 'a;

        /// Runs `cmd` with `options`.
        fn execute_call<'a>(
            &'a self,
            cmd: &'a Cmd,
            options: &'a CallOptions,
        ) -> impl Future<Output = Result<Value>> + Send + 'a;
    }
}

/// A command from a typed method of [`Commands`](crate::Commands): a
/// future that runs it when first polled; the reply converts to `T`.
/// Before that, its options can be set for this call only.
///
/// ```no_run
/// # async fn demo(client: valkey_client::Valkey) -> valkey_client::Result<()> {
/// use std::time::Duration;
/// use valkey_client::Commands;
/// let n = client.incr("counter").await?;
/// // This call only: a 200 ms deadline, and a lost reply may be retried
/// // (the caller accepts a double increment).
/// let m = client
///     .incr("counter")
///     .timeout(Duration::from_millis(200))
///     .retry_non_idempotent(true)
///     .await?;
/// # Ok(()) }
/// ```
#[must_use = "a Call does nothing until awaited"]
pub struct Call<'a, C: sealed::Execute, T> {
    client: &'a C,
    /// The command and its options until the call is first polled, and
    /// while its first attempt runs (a retry needs them).
    parts: Option<(Cmd, CallOptions)>,
    /// The first attempt, its request queued, when it had nothing to wait
    /// for: no allocation.
    first: Option<C::First>,
    /// The call on the general path, or after its first attempt failed.
    running: Option<Running<'a, T>>,
    reply: PhantomData<fn() -> T>,
}

// One allocation, off the common path: a named future type for an `async`
// body needs a feature stable Rust does not have yet.
type Running<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>;

impl<'a, C: sealed::Execute, T> Call<'a, C, T> {
    pub(crate) fn new(client: &'a C, cmd: Cmd) -> Self {
        Call {
            client,
            parts: Some((cmd, CallOptions::default())),
            first: None,
            running: None,
            reply: PhantomData,
        }
    }

    /// The overall deadline of this call: every attempt and backoff sleep.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        if let Some((_, options)) = &mut self.parts {
            options.timeout = Some(timeout);
        }
        self
    }

    /// Retry this call even when it may have run and is not safe to repeat;
    /// see [`CallOptions::retry_non_idempotent`].
    pub fn retry_non_idempotent(mut self, allow: bool) -> Self {
        if let Some((_, options)) = &mut self.parts {
            options.retry_non_idempotent = Some(allow);
        }
        self
    }

    /// Every per-call option at once.
    pub fn with_options(mut self, options: CallOptions) -> Self {
        if let Some((_, o)) = &mut self.parts {
            *o = options;
        }
        self
    }

    /// The command this call sends; `None` once it has been polled.
    pub fn cmd(&self) -> Option<&Cmd> {
        if self.first.is_some() || self.running.is_some() {
            return None;
        }
        self.parts.as_ref().map(|(cmd, _)| cmd)
    }
}

impl<C: sealed::Execute, T> std::fmt::Debug for Call<'_, C, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Call")
            .field("parts", &self.parts)
            .field("running", &(self.first.is_some() || self.running.is_some()))
            .finish()
    }
}

impl<'a, C: sealed::Execute, T: FromValue + Send + 'static> Future for Call<'a, C, T>
where
    C::First: Unpin,
{
    type Output = Result<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        // Every field is Unpin, so the call is.
        let this = self.get_mut();
        let client = this.client;
        if this.first.is_none() && this.running.is_none() {
            let Some((cmd, options)) = &this.parts else {
                return Poll::Ready(Err(crate::error::Error::new(
                    crate::error::ErrorKind::Data,
                    "a Call was polled after it completed",
                )));
            };
            this.first = client.first_attempt(cmd, options);
            if this.first.is_none() {
                let Some((cmd, options)) = this.parts.take() else {
                    return Poll::Pending;
                };
                this.running = Some(Box::pin(async move {
                    let value = client.execute_call(&cmd, &options).await?;
                    T::from_value(value)
                }));
            }
        }
        if let Some(first) = &mut this.first {
            let err = match ready!(client.poll_first(first, cx)) {
                Ok(value) => {
                    this.first = None;
                    this.parts = None;
                    return Poll::Ready(T::from_value(value));
                }
                Err(err) => err,
            };
            let (Some(first), Some((cmd, options))) = (this.first.take(), this.parts.take()) else {
                return Poll::Pending;
            };
            this.running = Some(Box::pin(async move {
                let value = client.after_first(&cmd, &options, first, err).await?;
                T::from_value(value)
            }));
        }
        let Some(running) = this.running.as_mut() else {
            return Poll::Pending;
        };
        let out = running.as_mut().poll(cx);
        if out.is_ready() {
            // A finished async block must not be polled again: a later poll
            // finds neither parts nor a running call, and says so.
            this.running = None;
        }
        out
    }
}
