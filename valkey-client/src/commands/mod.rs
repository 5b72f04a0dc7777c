//! Typed commands: [`Commands`], every command of valkey-server as a
//! method, with an options builder for each command's optional arguments
//! (`SetOptions`, `ScanOptions`, ...) and enums for its required choices
//! (`Side::Left`, `GeoUnit::Km`, ...).
//!
//! The trait, the builders and the enums are generated from the server's
//! `COMMAND DOCS` (`cargo run -p command-table -- generate`), so every
//! argument the server documents has a place, in the documented order.

mod call;
mod generated;
mod options;

pub use call::Call;
pub use generated::*;

use std::future::Future;

use crate::client::{CallOptions, Valkey};
use crate::cluster::ValkeyCluster;
use crate::cmd::Cmd;
use crate::error::Result;
use crate::from_value::FromValue;
use crate::pipeline::Pipeline;
use crate::resp::Value;
use crate::transaction::{Transaction, Watched};

impl call::sealed::Execute for Valkey {
    type First = crate::client::FirstAttempt;

    fn first_attempt(&self, cmd: &Cmd, options: &CallOptions) -> Option<Self::First> {
        Valkey::first_attempt(self, cmd, options)
    }

    fn poll_first(
        &self,
        first: &mut Self::First,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<Value>> {
        first.poll_reply(self, cx)
    }

    fn after_first<'a>(
        &'a self,
        cmd: &'a Cmd,
        options: &'a CallOptions,
        first: Self::First,
        err: crate::error::Error,
    ) -> impl Future<Output = Result<Value>> + Send + 'a {
        self.after_first_attempt(cmd, options, first, err)
    }

    fn execute_call<'a>(
        &'a self,
        cmd: &'a Cmd,
        options: &'a CallOptions,
    ) -> impl Future<Output = Result<Value>> + Send + 'a {
        self.execute(cmd, options)
    }
}

impl call::sealed::Execute for ValkeyCluster {
    type First = crate::cluster::ClusterFirstAttempt;

    fn first_attempt(&self, cmd: &Cmd, options: &CallOptions) -> Option<Self::First> {
        ValkeyCluster::first_attempt(self, cmd, options)
    }

    fn poll_first(
        &self,
        first: &mut Self::First,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<Value>> {
        ValkeyCluster::poll_first_attempt(first, cx)
    }

    fn after_first<'a>(
        &'a self,
        cmd: &'a Cmd,
        options: &'a CallOptions,
        first: Self::First,
        err: crate::error::Error,
    ) -> impl Future<Output = Result<Value>> + Send + 'a {
        self.after_first_attempt(cmd, options, first, err)
    }

    fn execute_call<'a>(
        &'a self,
        cmd: &'a Cmd,
        options: &'a CallOptions,
    ) -> impl Future<Output = Result<Value>> + Send + 'a {
        self.execute(cmd, options)
    }
}

/// Which reply types the generic methods of a [`Commands`] implementor
/// accept: any [`FromValue`] type for a client, `()` for a pipeline (its
/// replies come back when it runs). With one choice, the compiler infers
/// it: `pipe.get("k")` needs no type.
pub trait ReplyAs<T> {}

impl<T> ReplyAs<T> for &Valkey {}
impl<T> ReplyAs<T> for &ValkeyCluster {}
impl ReplyAs<()> for &mut Pipeline {}
impl ReplyAs<()> for &mut Transaction {}
impl<T> ReplyAs<T> for &mut Watched<'_> {}

impl<'a> Commands for &'a Valkey {
    type Reply<T: FromValue + Send + 'static> = Call<'a, Valkey, T>;

    fn send<T: FromValue + Send + 'static>(self, cmd: Cmd) -> Call<'a, Valkey, T> {
        Call::new(self, cmd)
    }
}

impl<'a> Commands for &'a ValkeyCluster {
    type Reply<T: FromValue + Send + 'static> = Call<'a, ValkeyCluster, T>;

    fn send<T: FromValue + Send + 'static>(self, cmd: Cmd) -> Call<'a, ValkeyCluster, T> {
        Call::new(self, cmd)
    }
}

/// Each method queues its command and returns the pipeline, so calls chain:
///
/// ```no_run
/// # async fn demo(client: valkey_client::Valkey) -> valkey_client::Result<()> {
/// use valkey_client::{Commands, Pipeline};
/// let mut pipe = Pipeline::new();
/// pipe.set("a", 1).incr("a").get("a");
/// let (_, n, a): ((), i64, String) = client.pipeline_into(&mut pipe).await?;
/// # Ok(()) }
/// ```
impl<'a> Commands for &'a mut Pipeline {
    type Reply<T: FromValue + Send + 'static> = &'a mut Pipeline;

    fn send<T: FromValue + Send + 'static>(self, cmd: Cmd) -> &'a mut Pipeline {
        self.add(&cmd)
    }
}

/// Each method queues its command in the transaction and returns it, so
/// calls chain; the replies come back from `EXEC`:
///
/// ```no_run
/// # async fn demo(client: valkey_client::Valkey) -> valkey_client::Result<()> {
/// use valkey_client::{Commands, Transaction};
/// let mut tx = Transaction::new();
/// tx.set("balance", 100).incrby("balance", -30);
/// let (_, left): ((), i64) = client.exec_into(&mut tx).await?;
/// # Ok(()) }
/// ```
impl<'a> Commands for &'a mut Transaction {
    type Reply<T: FromValue + Send + 'static> = &'a mut Transaction;

    fn send<T: FromValue + Send + 'static>(self, cmd: Cmd) -> &'a mut Transaction {
        self.add(&cmd)
    }
}

/// Reads (and any other command) on the watched connection inside
/// [`Valkey::watch`]'s closure, typed:
///
/// ```no_run
/// # async fn demo(client: valkey_client::Valkey) -> valkey_client::Result<()> {
/// use valkey_client::{Commands, Transaction};
/// client
///     .watch(["balance"], async |w| {
///         let balance: i64 = w.get("balance").await?;
///         let mut tx = Transaction::new();
///         tx.set("balance", balance + 1);
///         Ok(Some(tx))
///     })
///     .await?;
/// # Ok(()) }
/// ```
impl<'a, 'w> Commands for &'a mut Watched<'w>
where
    'w: 'a,
{
    type Reply<T: FromValue + Send + 'static> =
        std::pin::Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>;

    fn send<T: FromValue + Send + 'static>(self, cmd: Cmd) -> Self::Reply<T> {
        Box::pin(async move { self.request::<T>(&cmd).await })
    }
}
