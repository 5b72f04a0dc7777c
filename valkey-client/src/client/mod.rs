//! [`Valkey`]: the standalone client. It keeps one live multiplexed
//! connection, reconnects with a backoff, and applies the `Retry` policy to
//! each command under one overall deadline.

mod builder;
mod call;
mod first;

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::cmd::Cmd;
use crate::command::{self, ConnectionUse};
use crate::connection::Multiplexed;
use crate::error::{Delivery, Error, ErrorKind, Result};
use crate::from_value::FromValue;
use crate::pipeline::Pipeline;
use crate::resp::Value;
use crate::retry::Retry;
use crate::telemetry::{self, CallScope};
use tracing::{Instrument, Span};

pub use builder::ValkeyBuilder;

use crate::node::blocking::BlockingPool;
use crate::node::budget::Bucket;
use crate::node::events::EventListener;
use crate::node::keeper::{ConnectionKeeper, ReconnectPolicy};
use crate::node::options::NodeOptions;
use crate::node::retry_loop::{GaveUp, RetryPolicy, RetryTarget, retry_loop};
use call::{Connect, PipelineCall};

pub(crate) use call::{Mode, Single};
pub use first::FirstAttempt;

/// The standalone async client. Cheap to clone: clones share the connection,
/// the retry budget and the event listener.
///
/// `retry_on_timeout(true)` and `retry_on_error([..])` add kinds to the
/// `Retry`'s own supported errors (Connection and Timeout for
/// [`Retry::new`]); they never narrow them. Given without a `retry`, they
/// get `Retry(NoBackoff, 1)` for just the kinds they name.
/// [`Valkey::effective_retry`] shows what is in force.
///
/// ```
/// # #[tokio::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let (server, _url) = valkey_testkit::start_server().await?;
/// # let port = server.port();
/// use valkey_client::{Commands, ErrorKind, ExponentialBackoff, Retry, Valkey};
///
/// // Run 3 retries with exponential backoff strategy
/// let retry = Retry::new(ExponentialBackoff::default(), 3);
/// // Valkey client with retries on custom errors
/// let r = Valkey::builder()
///     .host("127.0.0.1")
///     .port(port)
///     .retry(retry.clone())
///     .retry_on_error([ErrorKind::BusyLoading, ErrorKind::Connection, ErrorKind::Timeout])
///     .build()
///     .await?;
/// // Valkey client that retries Timeout errors, on top of the Retry's own
/// // supported errors (Connection and Timeout here), not instead of them
/// let r_with_timeout = Valkey::builder()
///     .host("127.0.0.1")
///     .port(port)
///     .retry(retry)
///     .retry_on_timeout(true)
///     .build()
///     .await?;
/// let effective = r_with_timeout.effective_retry().expect("a retry");
/// assert!(effective.is_supported(ErrorKind::Connection));
/// r.set("greeting", "hello").await?;
/// let v: Option<String> = r_with_timeout.get("greeting").await?;
/// assert_eq!(v.as_deref(), Some("hello"));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Valkey {
    inner: Arc<Inner>,
}

struct Inner {
    keeper: Arc<ConnectionKeeper>,
    blocking: BlockingPool,
    retry: Option<Retry>,
    retry_non_idempotent: bool,
    response_timeout: Option<Duration>,
    request_timeout: Option<Duration>,
    budget: Option<Arc<Bucket>>,
    listener: Option<EventListener>,
    // For `select`: what this client was built with, to build another.
    options: NodeOptions,
    reconnect: Option<ReconnectPolicy>,
    /// For a subscriber's own reconnects (pub/sub).
    reconnect_backoff: Box<dyn crate::backoff::Backoff>,
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
    pub(crate) retry_non_idempotent: Option<bool>,
    pub(crate) timeout: Option<Duration>,
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
            .field("addr", &self.inner.keeper.addr())
            .field("retry", &self.inner.retry)
            .finish()
    }
}

impl Valkey {
    /// A builder with every option.
    pub fn builder() -> ValkeyBuilder {
        ValkeyBuilder::new()
    }

    /// A client for the server `options.config` names. `reconnect`: how to
    /// reopen the connection in the background (`None`: only on demand, as
    /// the nodes of a cluster do); `budget`: shared with other clients (the
    /// nodes of one cluster share one).
    pub(crate) fn from_options(
        options: &NodeOptions,
        reconnect: Option<ReconnectPolicy>,
        budget: Option<Arc<Bucket>>,
    ) -> Valkey {
        let config = options.config.clone();
        let reconnect_backoff = reconnect.as_ref().map_or_else(
            || Box::new(crate::backoff::default_backoff()) as Box<dyn crate::backoff::Backoff>,
            |policy| policy.backoff.clone(),
        );
        let mux = options.mux_options();
        let response_timeout = mux.response_timeout;
        let blocking = BlockingPool::new(config.clone(), options.max_blocking_connections);
        let keeper = Arc::new(ConnectionKeeper::new(
            config,
            mux,
            reconnect.clone(),
            options.max_waiting_for_connection,
            options.listener.clone(),
        ));
        Valkey {
            inner: Arc::new(Inner {
                keeper,
                blocking,
                retry: options.effective_retry(),
                retry_non_idempotent: options.retry_non_idempotent,
                response_timeout,
                request_timeout: options.request_timeout,
                budget,
                listener: options.listener.clone(),
                options: options.clone(),
                reconnect,
                reconnect_backoff,
            }),
        }
    }

    // --- Added for select(db), transactions and watch (see
    // `crate::transaction`). ---

    /// A client for database `db` of the same server: a new handle with
    /// connections of its own (its shared connection and its pool of
    /// dedicated ones), whose handshake selects `db`, so every reconnect
    /// comes back to it. Everything else is this client's: address,
    /// credentials, retry, timeouts, reconnection, event listener; the retry
    /// budget is shared with it. No connection opens until the first
    /// request. `SELECT` itself stays refused on the shared connection.
    ///
    /// ```
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let (_server, url) = valkey_testkit::start_server().await?;
    /// # let client = valkey_client::Valkey::from_url(&url).await?;
    /// use valkey_client::Commands;
    /// let db1 = client.select(1);
    /// db1.set("k", "in db 1").await?;
    /// let in_db0: Option<String> = client.get("k").await?;
    /// assert_eq!(in_db0, None);
    /// # Ok(()) }
    /// ```
    pub fn select(&self, db: i64) -> Valkey {
        let inner = &*self.inner;
        let mut options = inner.options.clone();
        options.config = options.config.db(db);
        Valkey::from_options(&options, inner.reconnect.clone(), inner.budget.clone())
    }

    /// The pool of dedicated connections (blocking commands, `watch`).
    pub(crate) fn dedicated(&self) -> &BlockingPool {
        &self.inner.blocking
    }

    /// How long one attempt waits for its reply.
    pub(crate) fn response_timeout(&self) -> Option<Duration> {
        self.inner.response_timeout
    }

    /// The overall deadline of a call with `options`, from now.
    pub(crate) fn call_deadline(&self, options: &CallOptions) -> Option<Instant> {
        self.deadline(options)
    }

    // --- End of the additions for select(db), transactions and watch. ---

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
    ///
    /// Ordinary commands share the client's multiplexed connection. Blocking
    /// commands (`BLPOP`, `XREAD ... BLOCK`, `WAIT`, ...) run on a dedicated
    /// connection from a small pool, so they hold up no other caller; their
    /// own timeout argument extends the response timeout for that request
    /// (`0` waits until the call's deadline, if any). Commands that change
    /// the state of their connection (`SUBSCRIBE`, `MULTI`, `WATCH`,
    /// `SELECT`, `CLIENT REPLY`, `MONITOR`, ...) are refused with an
    /// [`ErrorKind::StatefulCommand`] error naming the API to use instead;
    /// see [`command::state_commands`] for the list.
    pub async fn request<T: FromValue>(&self, cmd: &Cmd) -> Result<T> {
        T::from_value(self.execute(cmd, &CallOptions::default()).await?)
    }

    /// Runs a command with per-call options and converts its reply.
    pub async fn request_with<T: FromValue>(&self, cmd: &Cmd, options: &CallOptions) -> Result<T> {
        T::from_value(self.execute(cmd, options).await?)
    }

    // --- pub/sub ---
    /// A [`Subscriber`](crate::pubsub::Subscriber) with the default
    /// [`SubscriberOptions`](crate::pubsub::SubscriberOptions): a dedicated
    /// connection with this client's settings (address, protocol,
    /// credentials, TLS, timeouts) that reconnects on its own with this
    /// client's reconnect backoff and restores every subscription. It
    /// connects before returning, so a wrong address or password fails
    /// here. See [`crate::pubsub`].
    ///
    /// ```no_run
    /// # async fn demo(client: valkey_client::Valkey) -> valkey_client::Result<()> {
    /// let mut sub = client.subscriber().await?;
    /// sub.subscribe(["a", "b"]).await?;
    /// sub.psubscribe(["news.*"]).await?;
    /// while let Some(msg) = sub.next().await {
    ///     println!("{:?}: {:?}", msg.channel, msg.payload);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn subscriber(&self) -> Result<crate::pubsub::Subscriber> {
        self.subscriber_with(crate::pubsub::SubscriberOptions::default())
            .await
    }

    /// [`Valkey::subscriber`] with other options.
    pub async fn subscriber_with(
        &self,
        options: crate::pubsub::SubscriberOptions,
    ) -> Result<crate::pubsub::Subscriber> {
        let inner = &*self.inner;
        crate::pubsub::Subscriber::standalone(
            inner.keeper.config().clone(),
            &options,
            inner.listener.clone(),
            inner.reconnect_backoff.clone(),
        )
        .await
    }
    // --- end pub/sub ---

    /// Sends every command of a [`Pipeline`] in one write on the shared
    /// connection and returns one result per command, in order: its reply,
    /// its server error, or, for a command left without a reply, the error
    /// that says whether it was written ([`Error::delivery`]).
    ///
    /// On a retryable failure only the unanswered commands are sent again,
    /// and only when each of them may be: it was never sent, the server
    /// rejected it (LOADING, ...), or it is safe to repeat (an `INCR` whose
    /// reply was lost is not, unless the call or client opts in). So no
    /// command of a pipeline runs twice by accident. The outer error is for
    /// a pipeline that cannot be sent at all (an argument before any
    /// command, or more commands than the connection's in-flight limit).
    ///
    /// ```
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let (_server, url) = valkey_testkit::start_server().await?;
    /// # let client = valkey_client::Valkey::from_url(&url).await?;
    /// use valkey_client::Pipeline;
    /// let mut pipe = Pipeline::new();
    /// pipe.cmd("SET").arg("a").arg(1);
    /// pipe.cmd("INCR").arg("a");
    /// let results = client.pipeline(&mut pipe).await?;
    /// assert_eq!(results[1].as_ref().ok().and_then(|v| v.as_int()), Some(2));
    /// # Ok(()) }
    /// ```
    pub async fn pipeline(&self, pipe: &mut Pipeline) -> Result<Vec<Result<Value>>> {
        self.pipeline_with(pipe, &CallOptions::default()).await
    }

    /// [`Valkey::pipeline`] with per-call options (the deadline covers the
    /// whole pipeline and its retries).
    pub async fn pipeline_with(
        &self,
        pipe: &mut Pipeline,
        options: &CallOptions,
    ) -> Result<Vec<Result<Value>>> {
        let operation = pipe.operation_name();
        let call = self.call_scope(|| operation, || operation.as_bytes());
        telemetry::record_batch_size(call.span(), pipe.len());
        let deadline = self.deadline(options);
        let result = self
            .pipeline_until(pipe, deadline, self.opted_in(options))
            .instrument(call.span().clone())
            .await;
        call.finish(&result);
        result
    }

    /// Runs a pipeline like [`Valkey::pipeline`] and converts its replies
    /// as one array into `T`: a tuple with one element per command, a
    /// `Vec`, ... The first failed command's error is the returned error,
    /// unless `T` asks for `Result` elements (`Vec<Result<i64>>`, or
    /// `(Result<()>, i64)`), which keep each command's own result.
    ///
    /// ```
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let (_server, url) = valkey_testkit::start_server().await?;
    /// # let client = valkey_client::Valkey::from_url(&url).await?;
    /// use valkey_client::Pipeline;
    /// let mut pipe = Pipeline::new();
    /// pipe.cmd("SET").arg("a").arg(1);
    /// pipe.cmd("INCR").arg("a");
    /// pipe.cmd("GET").arg("missing");
    /// let ((), n, missing): ((), i64, Option<String>) = client.pipeline_into(&mut pipe).await?;
    /// assert_eq!((n, missing), (2, None));
    ///
    /// // A transaction: its replies are OK, QUEUED, ..., then EXEC's array,
    /// // whose elements may fail one by one.
    /// let mut tx = Pipeline::new();
    /// tx.cmd("MULTI");
    /// tx.cmd("INCR").arg("a");
    /// tx.cmd("HSET").arg("a").arg(("f", 1)); // WRONGTYPE at EXEC
    /// tx.cmd("EXEC");
    /// let ((), (), (), exec): ((), (), (), Vec<valkey_client::Result<i64>>) =
    ///     client.pipeline_into(&mut tx).await?;
    /// assert!(exec[1].is_err());
    /// # Ok(()) }
    /// ```
    pub async fn pipeline_into<T: FromValue>(&self, pipe: &mut Pipeline) -> Result<T> {
        T::from_results(self.pipeline(pipe).await?)
    }

    /// [`Valkey::pipeline_into`] with per-call options.
    pub async fn pipeline_into_with<T: FromValue>(
        &self,
        pipe: &mut Pipeline,
        options: &CallOptions,
    ) -> Result<T> {
        T::from_results(self.pipeline_with(pipe, options).await?)
    }

    /// [`Valkey::pipeline_with`] within `deadline` (the cluster sends each
    /// node its part of a pipeline under the call's one deadline).
    pub(crate) async fn pipeline_until(
        &self,
        pipe: &mut Pipeline,
        deadline: Option<Instant>,
        opted_in: bool,
    ) -> Result<Vec<Result<Value>>> {
        pipe.encoded()?;
        let usage = pipe.shared_use()?;
        usage.refuse_blocking()?;
        let mut call = PipelineCall::new(self, pipe, usage.transaction);
        let outcome = match call.attempt(deadline).await {
            Ok(()) => Ok(()),
            Err(err) => self
                .retry_until_given_up("PIPELINE", &mut call, deadline, opted_in, err, true)
                .await
                .map_err(|gave_up| gave_up.error),
        };
        call.finish(outcome.err())
    }

    fn deadline(&self, options: &CallOptions) -> Option<Instant> {
        options
            .timeout
            .or(self.inner.request_timeout)
            .and_then(|limit| Instant::now().checked_add(limit))
    }

    /// Runs one command for a caller, as one call: its span, its metrics.
    pub(crate) async fn execute(&self, cmd: &Cmd, options: &CallOptions) -> Result<Value> {
        let call = self.call_scope(|| cmd.name(), || cmd.name_bytes());
        let result = match command::connection_use(cmd) {
            ConnectionUse::Shared => {
                let deadline = self.deadline(options);
                // The happy path: one attempt, no retry state built, the
                // span not entered (the first attempt reports no event).
                match self.attempt(cmd, deadline).await {
                    Ok(value) => Ok(value),
                    Err(err) => {
                        let retry = self.retry_shared(cmd, options, deadline, err, call.span());
                        // The retry state is large and rarely needed: on the
                        // heap, so the happy path's future stays small.
                        Box::pin(retry).await
                    }
                }
            }
            ConnectionUse::Blocking(timeout) => {
                let deadline = self.deadline(options);
                let mut single = Single::new(self, cmd, Mode::Blocking(timeout));
                // Boxed, like the retries below: the shared path's future
                // stays small, so moving it (into a `Call`'s box) is cheap.
                let run = self.run(cmd.name(), &mut single, deadline, options);
                Box::pin(run.instrument(call.span().clone())).await
            }
            ConnectionUse::State(state) => Err(state.refusal()),
        };
        call.finish(&result);
        result
    }

    /// A call on this client's server and database; see [`CallScope`].
    fn call_scope<'a>(
        &self,
        operation: impl FnOnce() -> &'a str,
        name: impl FnOnce() -> &'a [u8],
    ) -> CallScope {
        let call = CallScope::start(operation, name);
        self.record_server(call.span());
        call
    }

    /// Records this client's server and database on `span`.
    pub(crate) fn record_server(&self, span: &Span) {
        let config = self.inner.keeper.config();
        telemetry::record_server(span, config.addr(), config.db_index());
    }

    /// Records this client's server and database on the current span (a
    /// cluster call's, in its retry path).
    pub(crate) fn record_server_on_current_span(&self) {
        let config = self.inner.keeper.config();
        telemetry::record_current_server(config.addr(), config.db_index());
    }

    /// Runs a command again on the shared connection after its first
    /// attempt failed with `err`, under the retry policy, in the call's span.
    async fn retry_shared(
        &self,
        cmd: &Cmd,
        options: &CallOptions,
        deadline: Option<Instant>,
        err: Error,
        span: &Span,
    ) -> Result<Value> {
        let mut call = Single::new(self, cmd, Mode::Shared);
        let retry = self.retry(cmd.name(), &mut call, deadline, options, err);
        retry.instrument(span.clone()).await
    }

    /// Opens the connection under the retry policy: its backoff and
    /// retried kinds, each attempt within the connect timeout, all of them
    /// within the request timeout. For `build()`.
    async fn connect_under_retry(&self) -> Result<()> {
        let options = CallOptions::default();
        let deadline = self.deadline(&options);
        self.run("CONNECT", &mut Connect(self), deadline, &options)
            .await
    }

    /// Runs `target` once and, when that fails, again under the client's
    /// retry policy (the shared loop of `node::retry_loop`).
    async fn run<A: RetryTarget>(
        &self,
        command: &str,
        target: &mut A,
        deadline: Option<Instant>,
        options: &CallOptions,
    ) -> Result<A::Output> {
        match target.attempt(deadline).await {
            Ok(value) => Ok(value),
            Err(err) => self.retry(command, target, deadline, options, err).await,
        }
    }

    /// Repeats `target` after its first failure `err` under the client's
    /// retry policy. The loop reports its give-up as an event.
    async fn retry<A: RetryTarget>(
        &self,
        command: &str,
        target: &mut A,
        deadline: Option<Instant>,
        options: &CallOptions,
        err: Error,
    ) -> Result<A::Output> {
        let opted_in = self.opted_in(options);
        self.retry_until_given_up(command, target, deadline, opted_in, err, true)
            .await
            .map_err(|gave_up| gave_up.error)
    }

    /// Whether a call with `options` accepts that a command that may have
    /// run runs again.
    pub(crate) fn opted_in(&self, options: &CallOptions) -> bool {
        options
            .retry_non_idempotent
            .unwrap_or(self.inner.retry_non_idempotent)
    }

    /// [`Valkey::retry`], saying why it gave up: the cluster client acts on
    /// the reason (a node whose retry is spent on connection failures is
    /// dropped and the topology read again).
    pub(crate) async fn retry_until_given_up<A: RetryTarget>(
        &self,
        command: &str,
        target: &mut A,
        deadline: Option<Instant>,
        opted_in: bool,
        err: Error,
        report_give_up: bool,
    ) -> Result<A::Output, GaveUp> {
        let inner = &*self.inner;
        let keeper = &inner.keeper;
        let policy = RetryPolicy {
            retry: inner.retry.as_ref(),
            budget: inner.budget.as_deref(),
            listener: inner.listener.as_ref(),
            opted_in,
            on_failure: &|err| keeper.on_failure(err),
            report_give_up,
        };
        retry_loop(&policy, command, target, deadline, err).await
    }

    /// The address of this client's server, as `host:port`.
    pub(crate) fn addr(&self) -> &str {
        self.inner.keeper.addr()
    }

    /// The host and port of this client's server (`None` for a Unix socket).
    pub(crate) fn host_port(&self) -> Option<(&str, u16)> {
        self.inner.keeper.config().addr().host_port()
    }

    /// Whether connecting to this server failed last time and no
    /// connection is up: a topology read asks it last.
    pub(crate) fn is_failing(&self) -> bool {
        self.inner.keeper.is_failing()
    }

    /// Ends the shared connection (the cluster drops a node's client that
    /// left the topology; calls in flight still get their replies).
    pub(crate) fn close_connection(&self) {
        if let Some(conn) = self.inner.keeper.live() {
            self.inner.keeper.retire(&conn);
        }
    }

    /// One attempt of `cmd` sent as `mode` says.
    pub(crate) async fn attempt_in(
        &self,
        cmd: &Cmd,
        mode: Mode,
        deadline: Option<Instant>,
    ) -> Result<Value> {
        match mode {
            Mode::Shared => self.attempt(cmd, deadline).await,
            Mode::Blocking(timeout) => self.attempt_blocking(cmd, timeout, deadline).await,
            Mode::Asking => self.attempt_asking(cmd, deadline).await,
        }
    }

    /// `ASKING` and `cmd` in one write: the node takes the command for a
    /// slot it is importing only right after `ASKING` on that connection.
    async fn attempt_asking(&self, cmd: &Cmd, deadline: Option<Instant>) -> Result<Value> {
        let (conn, limit) = self.connection(deadline).await?;
        let mut pipe = Pipeline::new();
        pipe.cmd("ASKING").add(cmd);
        let (bytes, starts) = pipe.encoded_from(0)?;
        let replies = conn.send_encoded(bytes, starts, limit).await;
        let mut replies = match replies {
            Ok(replies) => replies,
            Err(err) => {
                self.after_failure(&conn, &err);
                return Err(err);
            }
        };
        let reply = replies.pop();
        let asking = replies.pop();
        match (asking, reply) {
            (Some(Err(err)), _) | (_, Some(Err(err))) => {
                self.after_failure(&conn, &err);
                Err(err)
            }
            (_, Some(Ok(value))) => Ok(value),
            _ => Err(Error::new(
                ErrorKind::InvalidResponse,
                "no reply to a command sent after ASKING",
            )),
        }
    }

    /// One attempt of one command on the shared connection.
    pub(crate) async fn attempt(&self, cmd: &Cmd, deadline: Option<Instant>) -> Result<Value> {
        // The happy path, a live connection and no deadline, awaits nothing
        // but the reply.
        let (conn, limit) = match self.inner.keeper.live() {
            Some(conn) if deadline.is_none() => (conn, self.inner.response_timeout),
            _ => self.connection(deadline).await?,
        };
        let result = conn.send_unchecked(cmd, limit).await;
        if let Err(err) = &result {
            self.after_failure(&conn, err);
        }
        result
    }

    /// One attempt of a blocking command on a dedicated connection.
    async fn attempt_blocking(
        &self,
        cmd: &Cmd,
        timeout: command::BlockingTimeout,
        deadline: Option<Instant>,
    ) -> Result<Value> {
        let inner = &*self.inner;
        inner
            .blocking
            .run(cmd, timeout, inner.response_timeout, deadline)
            .await
    }

    /// A request on `conn` failed with `err`. A timeout with the reply
    /// outstanding makes the connection suspect: it is retired, so the next
    /// request (a retry included) runs on a fresh one.
    pub(crate) fn after_failure(&self, conn: &Multiplexed, err: &Error) {
        if is_suspect(err) {
            self.inner.keeper.retire(conn);
        }
    }

    /// A live connection (opening one if needed), and how long an attempt
    /// on it may wait: the response timeout, cut to what is left of the
    /// deadline.
    async fn connection(
        &self,
        deadline: Option<Instant>,
    ) -> Result<(Multiplexed, Option<Duration>)> {
        let inner = &*self.inner;
        let Some(deadline) = deadline else {
            return Ok((inner.keeper.get().await?, inner.response_timeout));
        };
        let addr = inner.keeper.addr();
        let left = deadline.saturating_duration_since(Instant::now());
        let conn = match tokio::time::timeout(left, inner.keeper.get()).await {
            Ok(conn) => conn?,
            Err(_) => return Err(deadline_error(addr)),
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(deadline_error(addr));
        }
        Ok((
            conn,
            Some(inner.response_timeout.map_or(left, |t| t.min(left))),
        ))
    }
}

/// Whether a failed request leaves its connection suspect: it timed out
/// with its reply outstanding.
fn is_suspect(err: &Error) -> bool {
    err.kind() == ErrorKind::Timeout && err.delivery() == Delivery::SentNoReply
}

/// The error for a call whose deadline passed before its request was sent.
fn deadline_error(addr: &str) -> Error {
    Error::new(
        ErrorKind::Timeout,
        format!("the call's deadline passed before {addr} answered"),
    )
    .with_delivery(Delivery::NotSent)
}
