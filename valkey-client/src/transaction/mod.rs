//! Transactions: [`Transaction`], commands queued client-side and sent as
//! `MULTI`, the commands, `EXEC` in one write on the shared connection; and
//! [`watch`](crate::Valkey::watch), optimistic locking on a dedicated
//! connection (in `watch.rs`).
//!
//! A transaction rides on the pipeline path: a pipeline that is exactly one
//! `MULTI ... EXEC` is recognised there, kept whole, and retried only as a
//! whole (never sent, refused before `EXEC` ran, or every queued command
//! safe to repeat). This module adds the type that builds one and reads its
//! `EXEC` reply.

mod watch;

use crate::client::{CallOptions, Valkey};
use crate::cluster::ValkeyCluster;
use crate::cmd::{Cmd, ToArg};
use crate::error::{Delivery, Error, ErrorKind, Result};
use crate::from_value::FromValue;
use crate::pipeline::Pipeline;
use crate::resp::{ServerError, Value};

pub use watch::{DEFAULT_WATCH_ATTEMPTS, WatchOptions, Watched};

/// Commands to run as one `MULTI ... EXEC` transaction: queued here, sent
/// in one write, run by the server with no other client's command in
/// between.
///
/// ```no_run
/// # async fn demo(client: valkey_client::Valkey) -> valkey_client::Result<()> {
/// use valkey_client::Transaction;
/// let mut tx = Transaction::new();
/// tx.cmd("SET").arg("a").arg(1);
/// tx.cmd("INCR").arg("a");
/// let results = client.transaction(&mut tx).await?;
/// assert_eq!(results[1].as_ref().ok().and_then(|v| v.as_int()), Some(2));
///
/// // The replies converted as a whole.
/// let mut counters = Transaction::new();
/// counters.cmd("INCR").arg("hits").cmd("INCR").arg("visits");
/// let counts: Vec<i64> = client.exec_into(&mut counters).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Transaction {
    /// `MULTI` and the queued commands; `EXEC` is added when it runs.
    pipe: Pipeline,
}

impl Default for Transaction {
    fn default() -> Self {
        Transaction::new()
    }
}

/// Shows the command names, never argument values.
impl std::fmt::Debug for Transaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut pipe = self.pipe.clone();
        // Closes the last command, so that it reads back.
        let _ = pipe.encoded();
        let names: Vec<String> = (1..pipe.len()).map(|i| command_name(&pipe, i)).collect();
        f.debug_struct("Transaction")
            .field("commands", &names)
            .finish()
    }
}

impl Transaction {
    /// An empty transaction.
    pub fn new() -> Transaction {
        let mut pipe = Pipeline::new();
        pipe.cmd("MULTI");
        Transaction { pipe }
    }

    /// Queues a new command; add its arguments with [`Transaction::arg`].
    pub fn cmd(&mut self, name: &str) -> &mut Transaction {
        self.pipe.cmd(name);
        self
    }

    /// Adds an argument to the command being built.
    pub fn arg(&mut self, arg: impl ToArg) -> &mut Transaction {
        self.pipe.arg(arg);
        self
    }

    /// Adds every argument of an iterator to the command being built.
    pub fn args<A: ToArg>(&mut self, args: impl IntoIterator<Item = A>) -> &mut Transaction {
        self.pipe.args(args);
        self
    }

    /// Queues a command built beforehand.
    pub fn add(&mut self, cmd: &Cmd) -> &mut Transaction {
        self.pipe.add(cmd);
        self
    }

    /// The number of queued commands.
    pub fn len(&self) -> usize {
        self.pipe.len() - 1
    }

    /// Whether no command is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes every queued command.
    pub fn clear(&mut self) {
        self.pipe.clear();
        self.pipe.cmd("MULTI");
    }

    /// `MULTI`, the commands and `EXEC`, ready to send.
    pub(crate) fn to_pipeline(&self) -> Pipeline {
        let mut pipe = self.pipe.clone();
        pipe.cmd("EXEC");
        pipe
    }
}

/// The upper-case name of the command at `index` of a sent transaction
/// (`MULTI` is 0, the first queued command 1).
fn command_name(pipe: &Pipeline, index: usize) -> String {
    pipe.command(index)
        .map_or_else(|| "?".to_string(), |cmd| cmd.name().to_ascii_uppercase())
}

/// The transaction methods, the same on both clients (each has
/// `pipeline_with`, which recognises a `MULTI ... EXEC` pipeline): written
/// once. `$where` documents where the transaction runs.
macro_rules! transaction_methods {
    ($(#[$where:meta])*) => {
        /// Runs a transaction: `MULTI`, its commands and `EXEC` in one write
        /// on the shared connection. Returns one result per queued command,
        /// in order: its reply, or the error the server gave it inside
        /// `EXEC` (a failed command does not undo the others: that is how
        /// `EXEC` works).
        ///
        /// The call fails as a whole when the transaction did not run: a
        /// command refused while queued (`ErrorKind::ExecAbort`, naming it
        /// and why), or a failure on the way, whose
        /// [`Error::delivery`](crate::Error::delivery) says whether `EXEC`
        /// may have reached the server. A transaction is retried only as a
        /// whole, under the client's retry policy, and only when that cannot
        /// run it twice: nothing was sent, the server refused it before
        /// `EXEC` ran, or every queued command is safe to repeat (or the
        /// call opted in). The transaction keeps its commands: it can be run
        /// again.
        ///
        $(#[$where])*
        pub async fn transaction(&self, tx: &mut Transaction) -> Result<Vec<Result<Value>>> {
            self.transaction_with(tx, &CallOptions::default()).await
        }

        /// `transaction` with per-call options.
        pub async fn transaction_with(
            &self,
            tx: &mut Transaction,
            options: &CallOptions,
        ) -> Result<Vec<Result<Value>>> {
            let mut pipe = tx.to_pipeline();
            let replies = self.pipeline_with(&mut pipe, options).await?;
            exec_outcome(&pipe, replies)
        }

        /// `transaction`, with the `EXEC` reply converted as a whole into
        /// `T` (a `Vec`, a tuple, ...). A command that failed inside `EXEC`
        /// fails the call with its error, which says that the transaction
        /// ran.
        pub async fn exec_into<T: FromValue>(&self, tx: &mut Transaction) -> Result<T> {
            let mut pipe = tx.to_pipeline();
            let replies = self.pipeline(&mut pipe).await?;
            convert(&pipe, exec_outcome(&pipe, replies)?)
        }
    };
}

impl Valkey {
    transaction_methods!(
        /// Standalone, the keys may be anywhere.
    );
}

impl ValkeyCluster {
    transaction_methods!(
        /// In a cluster it runs on the primary that serves its keys: all of
        /// them must hash to one slot (give them a common hash tag, as in
        /// `{user1}:a`), else the call fails with `ErrorKind::CrossSlot`
        /// before anything is sent. After a `MOVED` (the server then runs
        /// nothing of it) it is sent whole to the new owner.
    );
}

/// What the replies of `MULTI`, the queued commands and `EXEC` say: the
/// results of the commands, or why the transaction did not (or may not
/// have) run.
pub(crate) fn exec_outcome(
    pipe: &Pipeline,
    mut replies: Vec<Result<Value>>,
) -> Result<Vec<Result<Value>>> {
    let exec = replies.pop().unwrap_or_else(|| {
        Err(Error::new(
            ErrorKind::InvalidResponse,
            "no reply to the transaction's EXEC",
        ))
    });
    match exec {
        Ok(Value::Array(items)) => Ok(items
            .into_iter()
            .map(|item| match item {
                Value::Error(server) => Err(Error::from_server(server)),
                item => Ok(item),
            })
            .collect()),
        Ok(Value::Nil) => Err(Error::new(
            ErrorKind::Watch,
            "EXEC returned nil: a watched key changed, and the transaction did not run",
        )),
        Ok(other) => Err(Error::new(
            ErrorKind::InvalidResponse,
            format!("EXEC answered {other:?} instead of an array of replies"),
        )),
        Err(err) if err.kind() == ErrorKind::ExecAbort => Err(aborted(pipe, &replies, err)),
        Err(err) => Err(not_run_or_unknown(err)),
    }
}

/// The `EXECABORT` error, naming the first command refused while queued
/// and the server's reason.
fn aborted(pipe: &Pipeline, replies: &[Result<Value>], exec: Error) -> Error {
    let refused = replies
        .iter()
        .enumerate()
        .skip(1)
        .find_map(|(i, r)| r.as_ref().err().map(|e| (i, e)));
    let Some((i, why)) = refused else {
        return exec;
    };
    let name = command_name(pipe, i);
    Error::from_server(ServerError {
        code: "EXECABORT".to_string(),
        message: format!(
            "the transaction did not run: its command {i} ({name}) was refused when queued: {why}"
        ),
    })
}

/// An error before `EXEC` answered, saying whether the transaction may
/// have run.
pub(crate) fn not_run_or_unknown(err: Error) -> Error {
    let context = match err.delivery() {
        Delivery::NotSent => "the transaction was not sent",
        Delivery::SentNoReply => {
            "the transaction's EXEC may have reached the server but no reply came, so it may \
             have run; it was not sent again"
        }
        // A server error reply (a refusal of MULTI or EXEC): its own words.
        Delivery::Replied => return err,
    };
    Error::new(err.kind(), format!("{context}: {err}"))
        .with_delivery(err.delivery())
        .with_source(err)
}

/// The results of a transaction as one `T`; a command that failed inside
/// `EXEC` fails the conversion.
pub(crate) fn convert<T: FromValue>(pipe: &Pipeline, results: Vec<Result<Value>>) -> Result<T> {
    let mut values = Vec::with_capacity(results.len());
    for (i, result) in results.into_iter().enumerate() {
        match result {
            Ok(value) => values.push(value),
            Err(err) => {
                let name = command_name(pipe, i + 1);
                let message = format!(
                    "command {} ({name}) failed inside EXEC; the transaction ran, and the \
                     other commands took effect: {}",
                    i + 1,
                    err.message()
                );
                return Err(match err.server_error() {
                    Some(server) => Error::from_server(ServerError {
                        code: server.code.clone(),
                        message,
                    }),
                    None => Error::new(err.kind(), message).with_delivery(err.delivery()),
                });
            }
        }
    }
    T::from_value(Value::Array(values))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The transaction as sent: with `EXEC`, every command closed.
    fn sent(tx: &Transaction) -> Pipeline {
        let mut pipe = tx.to_pipeline();
        pipe.encoded().unwrap();
        pipe
    }

    fn server(line: &str) -> Error {
        Error::from_server(ServerError::from_line(line.as_bytes()))
    }

    #[test]
    fn exec_replies_become_results() {
        let mut tx = Transaction::new();
        tx.cmd("SET").arg("a").arg(1);
        tx.cmd("LPUSH").arg("a").arg(2);
        assert_eq!(tx.len(), 2);
        let queued = || Ok(Value::SimpleString("QUEUED".into()));
        let exec = Value::Array(vec![
            Value::SimpleString("OK".into()),
            Value::Error(ServerError::from_line(b"WRONGTYPE Operation against a key")),
        ]);
        let replies = vec![
            Ok(Value::SimpleString("OK".into())),
            queued(),
            queued(),
            Ok(exec),
        ];
        let pipe = sent(&tx);
        let results = exec_outcome(&pipe, replies).unwrap();
        assert_eq!(results[0].as_ref().unwrap().as_str(), Some("OK"));
        assert_eq!(results[1].as_ref().unwrap_err().code(), Some("WRONGTYPE"));
        let err = convert::<Vec<Value>>(&pipe, results).unwrap_err();
        assert_eq!(err.code(), Some("WRONGTYPE"));
        assert!(err.message().contains("command 2 (LPUSH)"), "{err}");
        assert!(err.message().contains("the transaction ran"), "{err}");
    }

    #[test]
    fn an_abort_names_the_refused_command() {
        let mut tx = Transaction::new();
        tx.cmd("SET").arg("a").arg(1);
        tx.cmd("NOSUCHCOMMAND");
        let replies = vec![
            Ok(Value::SimpleString("OK".into())),
            Ok(Value::SimpleString("QUEUED".into())),
            Err(server("ERR unknown command 'NOSUCHCOMMAND'")),
            Err(server(
                "EXECABORT Transaction discarded because of previous errors.",
            )),
        ];
        let err = exec_outcome(&sent(&tx), replies).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ExecAbort);
        assert!(err.message().contains("command 2 (NOSUCHCOMMAND)"), "{err}");
        assert!(err.message().contains("unknown command"), "{err}");
    }

    #[test]
    fn a_lost_exec_reply_says_it_may_have_run() {
        let tx = sent(&Transaction::new());
        let lost = Error::new(ErrorKind::Connection, "closed").with_delivery(Delivery::SentNoReply);
        let replies = vec![Err(lost.clone()), Err(lost)];
        let err = exec_outcome(&tx, replies).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Connection);
        assert_eq!(err.delivery(), Delivery::SentNoReply);
        assert!(err.message().contains("may have run"), "{err}");
        let nil = vec![Ok(Value::SimpleString("OK".into())), Ok(Value::Nil)];
        assert_eq!(exec_outcome(&tx, nil).unwrap_err().kind(), ErrorKind::Watch);
    }
}
