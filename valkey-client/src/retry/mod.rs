//! [`Retry`]: run an operation again after supported failures, waiting as a
//! [`Backoff`] says between attempts.
//!
//! The rules are valkey-py's `Retry.call_with_retry`, kept exactly:
//!
//! 1. the backoff is reset once, before the first attempt (even when it succeeds);
//! 2. the operation runs; success returns its value;
//! 3. an error outside the supported kinds returns at once, `fail` is not called;
//! 4. otherwise the failure is counted and `fail(&error)` runs, also after the
//!    last failure; an error from `fail` is returned at once;
//! 5. when the retries are spent (`failures > retries`), the last error is returned;
//! 6. otherwise the call sleeps `compute(failures)` (when above zero) and goes to 2.
//!
//! Nothing here knows about connections: any operation whose error implements
//! [`RetryableError`] can be wrapped, in async code ([`Retry::call_with_retry`])
//! or blocking code ([`Retry::call_with_retry_blocking`]), with the same rules.
//!
//! valkey-py's `retry = Retry(ExponentialBackoff(), 3)`, wrapping an
//! operation of your own:
//!
//! ```
//! use valkey_client::{Error, ErrorKind, ExponentialBackoff, Retry};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Error> {
//! // Run 3 retries with exponential backoff strategy (16, 32, 64 ms), on
//! // Connection (with BusyLoading) and Timeout errors, plus READONLY replies.
//! let mut retry = Retry::new(ExponentialBackoff::default(), 3);
//! retry.update_supported_errors([ErrorKind::ReadOnly]);
//!
//! let mut attempts = 0;
//! let value = retry
//!     .call_with_retry(
//!         // The operation: here it fails twice, then succeeds.
//!         || {
//!             attempts += 1;
//!             let attempt = attempts;
//!             async move {
//!                 if attempt < 3 {
//!                     Err(Error::new(ErrorKind::Connection, "connection refused"))
//!                 } else {
//!                     Ok("bar")
//!                 }
//!             }
//!         },
//!         // Runs after each retried failure, e.g. to drop a broken connection.
//!         |err: &Error| {
//!             eprintln!("retrying after: {err}");
//!             async { Ok(()) }
//!         },
//!     )
//!     .await?;
//! assert_eq!((value, attempts), ("bar", 3));
//!
//! // Errors outside the supported kinds are returned at once.
//! let refused: Result<(), Error> = retry
//!     .call(|| async { Err(Error::new(ErrorKind::Data, "bad argument")) })
//!     .await;
//! assert_eq!(refused.unwrap_err().kind(), ErrorKind::Data);
//! # Ok(()) }
//! ```

use std::future::Future;
use std::time::Duration;

use crate::backoff::Backoff;
use crate::error::{Error, ErrorKind};

/// How an error is classified for retrying: its [`ErrorKind`], or `None` for
/// errors that are never retried.
pub trait RetryableError {
    /// The kind matched against [`Retry::supported_errors`].
    fn error_kind(&self) -> Option<ErrorKind>;
}

impl RetryableError for Error {
    fn error_kind(&self) -> Option<ErrorKind> {
        Some(self.kind())
    }
}

/// A bare kind, handy for operations that only report what went wrong.
impl RetryableError for ErrorKind {
    fn error_kind(&self) -> Option<ErrorKind> {
        Some(*self)
    }
}

/// Timeouts (`TimedOut`, `WouldBlock`) are [`ErrorKind::Timeout`], failures
/// of the connection are [`ErrorKind::Connection`], anything else (a bad
/// argument, a missing file) is not retried.
impl RetryableError for std::io::Error {
    fn error_kind(&self) -> Option<ErrorKind> {
        use std::io::ErrorKind as Io;
        match self.kind() {
            Io::TimedOut | Io::WouldBlock => Some(ErrorKind::Timeout),
            Io::ConnectionRefused
            | Io::ConnectionReset
            | Io::ConnectionAborted
            | Io::NotConnected
            | Io::BrokenPipe
            | Io::UnexpectedEof
            | Io::AddrNotAvailable
            | Io::HostUnreachable
            | Io::NetworkUnreachable
            | Io::NetworkDown => Some(ErrorKind::Connection),
            _ => None,
        }
    }
}

/// A retry policy: a backoff strategy, how many retries, and which error
/// kinds are retried.
///
/// Cloned freely; each call clones the backoff, so concurrent calls never
/// share backoff state.
#[derive(Debug, Clone)]
pub struct Retry {
    backoff: Box<dyn Backoff>,
    retries: Option<u32>,
    supported: Vec<ErrorKind>,
}

/// The kinds retried unless told otherwise, as in valkey-py.
const DEFAULT_SUPPORTED: [ErrorKind; 2] = [ErrorKind::Connection, ErrorKind::Timeout];

impl Retry {
    /// At most `retries` retries (so `retries + 1` attempts), waiting as
    /// `backoff` says, on Connection and Timeout errors.
    pub fn new(backoff: impl Backoff + 'static, retries: u32) -> Retry {
        Retry {
            backoff: Box::new(backoff),
            retries: Some(retries),
            supported: DEFAULT_SUPPORTED.to_vec(),
        }
    }

    /// Retries without limit (valkey-py's negative count), on Connection and
    /// Timeout errors.
    pub fn forever(backoff: impl Backoff + 'static) -> Retry {
        Retry {
            retries: None,
            ..Retry::new(backoff, 0)
        }
    }

    /// Replaces the retried kinds (valkey-py's `supported_errors` argument).
    pub fn with_supported_errors(mut self, kinds: impl IntoIterator<Item = ErrorKind>) -> Retry {
        self.supported.clear();
        self.update_supported_errors(kinds);
        self
    }

    /// Adds kinds to the retried ones (a union, duplicates ignored).
    pub fn update_supported_errors(&mut self, kinds: impl IntoIterator<Item = ErrorKind>) {
        for kind in kinds {
            if !self.supported.contains(&kind) {
                self.supported.push(kind);
            }
        }
    }

    /// The retried kinds, as listed. See [`Retry::is_supported`] for matching.
    pub fn supported_errors(&self) -> &[ErrorKind] {
        &self.supported
    }

    /// The retry limit; `None` means forever.
    pub fn retries(&self) -> Option<u32> {
        self.retries
    }

    /// Whether errors of `kind` are retried: some listed kind
    /// [`covers`](ErrorKind::covers) it (Connection covers BusyLoading and
    /// Authentication).
    pub fn is_supported(&self, kind: ErrorKind) -> bool {
        self.supported.iter().any(|listed| listed.covers(kind))
    }

    /// A fresh copy of the backoff strategy, for callers running their own loop.
    pub fn backoff(&self) -> Box<dyn Backoff> {
        self.backoff.clone()
    }

    /// Runs `op` until it succeeds, fails with an unsupported error, or the
    /// retries are spent; `fail` runs after each supported failure (e.g. to
    /// drop a broken connection) and may stop the loop by returning an error.
    pub async fn call_with_retry<T, E, F, Fut, G, GFut>(
        &self,
        mut op: F,
        mut fail: G,
    ) -> Result<T, E>
    where
        E: RetryableError,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        G: FnMut(&E) -> GFut,
        GFut: Future<Output = Result<(), E>>,
    {
        let mut attempts = Attempts::start(self);
        loop {
            let error = match op().await {
                Ok(value) => return Ok(value),
                Err(error) => error,
            };
            if !attempts.count_failure(&error) {
                return Err(error);
            }
            fail(&error).await?;
            match attempts.next_wait() {
                None => return Err(error),
                Some(wait) if wait > Duration::ZERO => tokio::time::sleep(wait).await,
                Some(_) => {}
            }
        }
    }

    /// [`Retry::call_with_retry`] without a `fail` callback.
    pub async fn call<T, E, F, Fut>(&self, op: F) -> Result<T, E>
    where
        E: RetryableError,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.call_with_retry(op, |_| std::future::ready(Ok(())))
            .await
    }

    /// The blocking flavour of [`Retry::call_with_retry`], same rules;
    /// sleeps with [`std::thread::sleep`].
    pub fn call_with_retry_blocking<T, E: RetryableError>(
        &self,
        op: impl FnMut() -> Result<T, E>,
        fail: impl FnMut(&E) -> Result<(), E>,
    ) -> Result<T, E> {
        self.blocking_with_sleep(op, fail, std::thread::sleep)
    }

    /// [`Retry::call_with_retry_blocking`] without a `fail` callback.
    pub fn call_blocking<T, E: RetryableError>(
        &self,
        op: impl FnMut() -> Result<T, E>,
    ) -> Result<T, E> {
        self.call_with_retry_blocking(op, |_| Ok(()))
    }

    /// The blocking loop with an injectable sleep, so tests need not sleep.
    fn blocking_with_sleep<T, E: RetryableError>(
        &self,
        mut op: impl FnMut() -> Result<T, E>,
        mut fail: impl FnMut(&E) -> Result<(), E>,
        mut sleep: impl FnMut(Duration),
    ) -> Result<T, E> {
        let mut attempts = Attempts::start(self);
        loop {
            let error = match op() {
                Ok(value) => return Ok(value),
                Err(error) => error,
            };
            if !attempts.count_failure(&error) {
                return Err(error);
            }
            fail(&error)?;
            match attempts.next_wait() {
                None => return Err(error),
                Some(wait) if wait > Duration::ZERO => sleep(wait),
                Some(_) => {}
            }
        }
    }
}

/// The state of one call: its own backoff copy and the failures so far.
///
/// Both flavours make every decision here, so they cannot drift apart; the
/// flavours only run the operation, `fail` and the sleep.
pub(crate) struct Attempts<'r> {
    retry: &'r Retry,
    backoff: Box<dyn Backoff>,
    failures: u32,
}

impl<'r> Attempts<'r> {
    /// Clones the backoff for this call and resets it (rule 1).
    pub(crate) fn start(retry: &'r Retry) -> Attempts<'r> {
        let mut backoff = retry.backoff.clone();
        backoff.reset();
        Attempts {
            retry,
            backoff,
            failures: 0,
        }
    }

    /// Whether `error` is retried (rule 3); if so, counts it (rule 4), and
    /// the caller runs `fail` next.
    fn count_failure<E: RetryableError>(&mut self, error: &E) -> bool {
        match error.error_kind() {
            Some(kind) if self.retry.is_supported(kind) => {
                self.count();
                true
            }
            _ => false,
        }
    }

    /// Counts a failure the caller has judged retryable itself (rule 4).
    pub(crate) fn count(&mut self) {
        self.failures = self.failures.saturating_add(1);
    }

    /// The failures counted so far.
    pub(crate) fn failures(&self) -> u32 {
        self.failures
    }

    /// After `fail` ran: `None` when the retries are spent (rule 5),
    /// otherwise the wait before the next attempt (rule 6).
    pub(crate) fn next_wait(&mut self) -> Option<Duration> {
        match self.retry.retries {
            Some(retries) if self.failures > retries => None,
            _ => Some(self.backoff.compute(self.failures)),
        }
    }
}

#[cfg(test)]
mod tests;
