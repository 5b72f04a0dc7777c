//! `watch`: optimistic locking. `WATCH` the keys on a dedicated connection,
//! let the caller read through it and decide on a [`Transaction`], send it
//! with `EXEC`; when a watched key changed meanwhile the server runs nothing
//! (`EXEC` answers nil) and the caller's closure runs again, a bounded
//! number of times.
//!
//! The connection comes from the node's pool of dedicated connections (the
//! one blocking commands use) and goes back only in a known state: after an
//! `EXEC` reply (which ends the transaction and every watch) or a successful
//! `UNWATCH`. A connection that broke, or whose request was cut short, is
//! closed instead.

use std::time::Duration;

use tokio::time::Instant;

use super::{Transaction, exec_outcome, not_run_or_unknown};
use crate::client::{CallOptions, Valkey};
use crate::cluster::{MAX_REDIRECTIONS, Route, ValkeyCluster, key_slot, route};
use crate::cmd::{Cmd, ToArg};
use crate::command::{self, ConnectionUse};
use crate::error::{Error, ErrorKind, Result};
use crate::from_value::FromValue;
use crate::node::blocking::{Lease, reply_limit, sooner};
use crate::pipeline::Pipeline;
use crate::resp::Value;

/// Runs of the closure after watch aborts, at most, by default.
pub const DEFAULT_WATCH_ATTEMPTS: u32 = 16;

/// Options of one [`Valkey::watch_with`] call.
///
/// ```
/// use std::time::Duration;
/// use valkey_client::WatchOptions;
/// let opts = WatchOptions::new().max_attempts(4).timeout(Duration::from_secs(2));
/// ```
#[derive(Debug, Clone)]
pub struct WatchOptions {
    max_attempts: u32,
    timeout: Option<Duration>,
}

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions {
            max_attempts: DEFAULT_WATCH_ATTEMPTS,
            timeout: None,
        }
    }
}

impl WatchOptions {
    /// The defaults: 16 attempts, the client's request timeout.
    pub fn new() -> WatchOptions {
        WatchOptions::default()
    }

    /// How many times the closure may run (at least once): after that many
    /// watch aborts in a row the call fails with [`ErrorKind::Watch`].
    pub fn max_attempts(mut self, attempts: u32) -> WatchOptions {
        self.max_attempts = attempts.max(1);
        self
    }

    /// The overall deadline of the call (instead of the client's request
    /// timeout): the wait for a connection and every request on it,
    /// attempts included.
    pub fn timeout(mut self, timeout: Duration) -> WatchOptions {
        self.timeout = Some(timeout);
        self
    }
}

/// The dedicated connection a [`Valkey::watch`] closure reads through, with
/// the keys watched.
pub struct Watched<'a> {
    lease: Lease<'a>,
    response_timeout: Option<Duration>,
    deadline: Option<Instant>,
    /// In a cluster, the slot of the watched keys: every command must stay
    /// in it.
    slot: Option<u16>,
}

impl std::fmt::Debug for Watched<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watched")
            .field("addr", &self.lease.addr())
            .field("slot", &self.slot)
            .finish_non_exhaustive()
    }
}

impl Watched<'_> {
    /// Runs a command on the watched connection and converts its reply:
    /// reads that the transaction will depend on. Commands that change the
    /// connection's state (`MULTI`, `EXEC`, `SELECT`, `SUBSCRIBE`, ...) are
    /// refused (return a [`Transaction`] from the closure instead); `WATCH`
    /// and `UNWATCH` are allowed. In a cluster, keys must be in the watched
    /// keys' slot.
    pub async fn request<T: FromValue>(&mut self, cmd: &Cmd) -> Result<T> {
        let limit = match command::connection_use(cmd) {
            ConnectionUse::Shared => sooner(self.deadline, self.response_timeout),
            ConnectionUse::Blocking(timeout) => {
                reply_limit(timeout, self.response_timeout, self.deadline)
            }
            ConnectionUse::State(state) if matches!(state.name, "watch" | "unwatch") => {
                sooner(self.deadline, self.response_timeout)
            }
            ConnectionUse::State(state) => {
                return Err(Error::new(
                    ErrorKind::StatefulCommand,
                    format!(
                        "{} cannot run on a watched connection: it would change the state the \
                         transaction relies on; return a Transaction from the closure instead",
                        state.name.replace('|', " ").to_ascii_uppercase()
                    ),
                ));
            }
        };
        self.check_slot(cmd)?;
        T::from_value(self.lease.request(cmd, limit).await?)
    }

    /// In a cluster: `cmd`'s keys must be in the watched slot.
    fn check_slot(&self, cmd: &Cmd) -> Result<()> {
        let Some(slot) = self.slot else {
            return Ok(());
        };
        match route(cmd)? {
            Route::Slot { slot: other, .. } if other != slot => Err(Error::new(
                ErrorKind::CrossSlot,
                format!(
                    "{} uses a key of slot {other}, but the watched keys are in slot {slot}: in a \
                     cluster, a watch and its transaction run within one slot; give the keys a \
                     common hash tag",
                    cmd.name().to_ascii_uppercase()
                ),
            )),
            _ => Ok(()),
        }
    }

    /// One attempt's `WATCH`.
    async fn watch(&mut self, cmd: &Cmd) -> Result<()> {
        let limit = sooner(self.deadline, self.response_timeout);
        self.lease.request(cmd, limit).await.map(|_| ())
    }

    /// The transaction with `EXEC`, checked before it is sent as on the
    /// shared connection (no command inside that changes the connection's
    /// state, such as `SELECT`, which would outlive the transaction) and,
    /// in a cluster, with every key in the watched slot.
    fn prepare(&self, tx: &Transaction) -> Result<Pipeline> {
        let mut pipe = tx.to_pipeline();
        pipe.shared_use()?;
        if self.slot.is_some() {
            for i in 1..pipe.len() {
                if let Some(cmd) = pipe.command(i) {
                    self.check_slot(&cmd)?;
                }
            }
        }
        Ok(pipe)
    }

    /// Sends a prepared transaction, in one write.
    async fn exec(&mut self, mut pipe: Pipeline) -> Result<Vec<Result<Value>>> {
        let limit = sooner(self.deadline, self.response_timeout);
        let replies = self
            .lease
            .pipeline(&mut pipe, limit)
            .await
            .map_err(not_run_or_unknown)?;
        // A command answered MOVED aborts the transaction: the slot moved.
        let aborted = replies
            .last()
            .is_some_and(|r| r.as_ref().is_err_and(|e| e.kind() == ErrorKind::ExecAbort));
        let moved = replies
            .iter()
            .find_map(|r| r.as_ref().err().filter(|e| e.kind() == ErrorKind::Moved));
        if let (true, Some(moved)) = (aborted, moved) {
            return Err(moved.clone());
        }
        exec_outcome(&pipe, replies)
    }

    /// `UNWATCH`, so that the connection can serve the next caller;
    /// whether it may.
    async fn unwatch(&mut self) -> bool {
        if !self.lease.is_usable() {
            return false;
        }
        let limit = sooner(self.deadline, self.response_timeout);
        self.lease
            .request(&Cmd::new("UNWATCH"), limit)
            .await
            .is_ok()
            && self.lease.is_usable()
    }
}

/// How one node's watch ended.
enum Ended {
    /// The transaction ran (`Some`), or the closure chose not to run one.
    Done(Option<Vec<Result<Value>>>),
    /// The watched slot has moved (cluster): nothing ran.
    Moved(Error),
}

/// The result of a watch: the transaction's results, or `None` when the
/// closure ran none.
type WatchResult = Result<Option<Vec<Result<Value>>>>;

/// `watch` and `watch_with`, the same on both clients, which differ only
/// in where the dedicated connection goes (`$on`, see [`watch_keys`]):
/// written once. `$where` documents where the watch runs.
macro_rules! watch_methods {
    ($on:path, $(#[$where:meta])*) => {
        /// Runs `f` under `WATCH keys` on a dedicated connection and executes
        /// the [`Transaction`] it returns; re-runs `f` when a watched key
        /// changed before `EXEC` (the server then ran nothing), at most
        /// [`DEFAULT_WATCH_ATTEMPTS`] times, after which the call fails with
        /// [`ErrorKind::Watch`]. `f` reads through the [`Watched`] handle,
        /// and returns `Ok(None)` to run nothing.
        ///
        /// `Ok(Some(results))` holds one result per command of the
        /// transaction, as `transaction` gives; `Ok(None)`: `f` chose not to
        /// run one. Errors of `f` come back as they are. A failure of the
        /// connection is not retried (the watch is lost with it): its error
        /// says whether the transaction may have run
        /// ([`Error::delivery`]); a transaction whose `EXEC` was written and
        /// got no reply is never sent again.
        ///
        /// The connection is one of the dedicated connections that blocking
        /// commands use (`max_blocking_connections` bounds both). It goes
        /// back to the pool only after `EXEC` answered or `UNWATCH`
        /// succeeded; if `f` fails on it, the call is cancelled, or a request
        /// on it fails, it is closed.
        ///
        $(#[$where])*
        pub async fn watch<K, F>(&self, keys: impl IntoIterator<Item = K>, f: F) -> WatchResult
        where
            K: ToArg,
            F: AsyncFnMut(&mut Watched<'_>) -> Result<Option<Transaction>>,
        {
            self.watch_with(&WatchOptions::default(), keys, f).await
        }

        /// `watch` with options: how many attempts, the deadline.
        pub async fn watch_with<K, F>(
            &self,
            options: &WatchOptions,
            keys: impl IntoIterator<Item = K>,
            mut f: F,
        ) -> WatchResult
        where
            K: ToArg,
            F: AsyncFnMut(&mut Watched<'_>) -> Result<Option<Transaction>>,
        {
            let watch = Cmd::new("WATCH").args(keys);
            if watch.arg_count() < 2 {
                return Err(Error::new(ErrorKind::Data, "watch needs at least one key"));
            }
            let deadline = self.call_deadline(&match options.timeout {
                Some(timeout) => CallOptions::new().timeout(timeout),
                None => CallOptions::new(),
            });
            watch_keys($on(self), &watch, options, deadline, &mut f).await
        }
    };
}

impl Valkey {
    watch_methods!(
        On::Node,
        /// ```no_run
        /// # async fn demo(client: valkey_client::Valkey) -> valkey_client::Result<()> {
        /// use valkey_client::{Cmd, Transaction};
        /// let results = client
        ///     .watch(["balance"], async |w| {
        ///         let balance: Option<i64> = w.request(&Cmd::new("GET").arg("balance")).await?;
        ///         let mut tx = Transaction::new();
        ///         tx.cmd("SET").arg("balance").arg(balance.unwrap_or(0) * 2);
        ///         Ok(Some(tx))
        ///     })
        ///     .await?;
        /// # Ok(()) }
        /// ```
    );
}

impl ValkeyCluster {
    watch_methods!(
        On::Cluster,
        /// In a cluster every watched key must be in one slot (else
        /// `ErrorKind::CrossSlot`, before anything is sent), the dedicated
        /// connection goes to that slot's primary, and the commands of `f`
        /// and of its transaction must stay in that slot. When the slot has
        /// moved (`MOVED` to the `WATCH`, to a read of `f` or inside the
        /// transaction, all before anything ran) the topology is read again
        /// and the whole watch runs on the new owner, up to 16 times. During
        /// a migration of the slot, a key already moved is answered `ASK`,
        /// which fails the call: try again once the migration is done.
    );
}

/// Where a watch runs: a node, or the cluster (then on the primary of the
/// watched keys' slot).
enum On<'a> {
    Node(&'a Valkey),
    Cluster(&'a ValkeyCluster),
}

/// The watch of `watch`'s keys: on the node, or, in the cluster, on the
/// primary of their one slot, again on its new owner after the slot moved.
async fn watch_keys<F>(
    on: On<'_>,
    watch: &Cmd,
    options: &WatchOptions,
    deadline: Option<Instant>,
    f: &mut F,
) -> WatchResult
where
    F: AsyncFnMut(&mut Watched<'_>) -> Result<Option<Transaction>>,
{
    let rc = match on {
        On::Node(node) => {
            return match watch_on(node, watch, options, deadline, None, f).await? {
                Ended::Done(results) => Ok(results),
                Ended::Moved(err) => Err(err),
            };
        }
        On::Cluster(rc) => rc,
    };
    let mut slots = watch.arg_iter().skip(1).map(key_slot);
    let slot = slots.next().unwrap_or_default();
    if slots.any(|other| other != slot) {
        return Err(Error::new(
            ErrorKind::CrossSlot,
            "the watched keys hash to different slots; in a cluster a watch and its \
             transaction run within one slot: give the keys a common hash tag",
        ));
    }
    let mut moved = 0;
    loop {
        let node = rc.slot_primary(slot, deadline).await?;
        match watch_on(&node, watch, options, deadline, Some(slot), f).await? {
            Ended::Done(results) => return Ok(results),
            Ended::Moved(err) if moved >= MAX_REDIRECTIONS => return Err(err),
            Ended::Moved(_) => {
                moved += 1;
                rc.refresh_topology().await?;
            }
        }
    }
}

/// The watch loop on one node's dedicated connection.
async fn watch_on<F>(
    node: &Valkey,
    watch: &Cmd,
    options: &WatchOptions,
    deadline: Option<Instant>,
    slot: Option<u16>,
    f: &mut F,
) -> Result<Ended>
where
    F: AsyncFnMut(&mut Watched<'_>) -> Result<Option<Transaction>>,
{
    let pool = node.dedicated();
    let mut watched = Watched {
        lease: pool.checkout(deadline).await?,
        response_timeout: node.response_timeout(),
        deadline,
        slot,
    };
    for _ in 0..options.max_attempts {
        if let Err(err) = watched.watch(watch).await {
            // The connection broke or the server refused: either way the
            // lease is not given back in an unknown state.
            if watched.unwatch().await {
                pool.give_back(watched.lease);
            }
            return moved_or(err);
        }
        let tx = match f(&mut watched).await.and_then(|tx| match tx {
            Some(tx) => watched.prepare(&tx).map(Some),
            None => Ok(None),
        }) {
            Ok(Some(tx)) => tx,
            Ok(None) => {
                if watched.unwatch().await {
                    pool.give_back(watched.lease);
                }
                return Ok(Ended::Done(None));
            }
            // An error of `f`, or a transaction refused before sending.
            Err(err) => {
                if watched.unwatch().await {
                    pool.give_back(watched.lease);
                }
                return moved_or(err);
            }
        };
        match watched.exec(tx).await {
            Ok(results) => {
                pool.give_back(watched.lease);
                return Ok(Ended::Done(Some(results)));
            }
            // Aborted by a change to a watched key: EXEC ended the watch,
            // the connection is clean for the next attempt.
            Err(err) if err.kind() == ErrorKind::Watch => {}
            Err(err) => {
                // EXEC answered (an abort, a refusal): the connection is
                // clean; else it broke or is in doubt, and the pool drops
                // it.
                pool.give_back(watched.lease);
                return moved_or(err);
            }
        }
    }
    pool.give_back(watched.lease);
    Err(Error::new(
        ErrorKind::Watch,
        format!(
            "a watched key changed before EXEC in each of {} attempts; the transaction did not \
             run",
            options.max_attempts
        ),
    ))
}

/// A `MOVED` before anything ran means the watched slot moved (the cluster
/// runs the watch again on its new owner); any other error ends the call.
fn moved_or(err: Error) -> Result<Ended> {
    if err.kind() == ErrorKind::Moved {
        Ok(Ended::Moved(err))
    } else {
        Err(err)
    }
}
