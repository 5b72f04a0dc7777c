//! What the retry loop repeats: one command, or the unanswered rest of a
//! pipeline. Each knows how to make one attempt and whether its last
//! failure may be retried.

use tokio::time::Instant;

use super::Valkey;
use crate::cmd::Cmd;
use crate::command::{self, BlockingTimeout, RepeatSafety};
use crate::error::{Delivery, Error, Result};
use crate::node::policy::{self, Refusal, may_retry};
use crate::node::retry_loop::RetryTarget;
use crate::pipeline::Pipeline;
use crate::resp::Value;
use crate::retry::Retry;

/// How one command is sent to its node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// On the shared connection.
    Shared,
    /// On a dedicated connection, with the command's own timeout argument.
    Blocking(BlockingTimeout),
    /// On the shared connection, right after `ASKING` in the same write (a
    /// cluster's `ASK` redirection).
    Asking,
}

/// One command, on the shared connection or, for a blocking command, on a
/// dedicated one.
pub(crate) struct Single<'a> {
    client: &'a Valkey,
    cmd: &'a Cmd,
    safe: bool,
    mode: Mode,
}

impl<'a> Single<'a> {
    /// Built on the first failure only: the command table lookup is not paid
    /// on the happy path.
    pub(crate) fn new(client: &'a Valkey, cmd: &'a Cmd, mode: Mode) -> Single<'a> {
        Single {
            client,
            cmd,
            safe: command::repeat_safety(cmd) != RepeatSafety::NotSafe,
            mode,
        }
    }
}

impl RetryTarget for Single<'_> {
    type Output = Value;

    async fn attempt(&mut self, deadline: Option<Instant>) -> Result<Value> {
        self.client.attempt_in(self.cmd, self.mode, deadline).await
    }

    fn judge(&self, retry: &Retry, err: &Error, opted_in: bool) -> Result<(), Refusal> {
        may_retry(retry, err, self.safe, opted_in)
    }
}

/// Opening the client's connection (for `build()`): nothing is sent, so any
/// retried kind may be retried.
pub(super) struct Connect<'a>(pub(super) &'a Valkey);

impl RetryTarget for Connect<'_> {
    type Output = ();

    async fn attempt(&mut self, deadline: Option<Instant>) -> Result<()> {
        self.0.connection(deadline).await.map(|_| ())
    }

    fn judge(&self, retry: &Retry, err: &Error, opted_in: bool) -> Result<(), Refusal> {
        may_retry(retry, err, true, opted_in)
    }
}

/// A pipeline: commands that got their answer keep it; a retry re-sends only
/// the unanswered rest, and only when each of those commands may be sent
/// again (never sent, rejected by the server, or safe to repeat).
///
/// A transaction (`MULTI ... EXEC` as the whole pipeline) is atomic on the
/// wire and is never split: it is sent again whole, and only when none of
/// it may have run (its `EXEC` never left, or was rejected) or every
/// command in it is safe to repeat.
pub(super) struct PipelineCall<'p> {
    client: &'p Valkey,
    pipe: &'p mut Pipeline,
    /// Final results of the first commands, in order.
    answered: Vec<Result<Value>>,
    /// The last attempt's results for the rest: errors, and possibly
    /// replies that came after a rejection.
    rest: Vec<Result<Value>>,
    /// The pipeline cannot be sent at all (too many commands).
    unsendable: bool,
    /// The pipeline is one `MULTI ... EXEC` transaction.
    transaction: bool,
}

impl<'p> PipelineCall<'p> {
    pub(super) fn new(
        client: &'p Valkey,
        pipe: &'p mut Pipeline,
        transaction: bool,
    ) -> PipelineCall<'p> {
        PipelineCall {
            client,
            answered: Vec::new(),
            pipe,
            rest: Vec::new(),
            unsendable: false,
            transaction,
        }
    }

    /// Every command's result after the last attempt; `err` (the call's
    /// last error, if it failed) stands for commands never attempted.
    pub(super) fn finish(mut self, err: Option<Error>) -> Result<Vec<Result<Value>>> {
        match err {
            Some(err) if self.unsendable => Err(err),
            err => {
                // Commands the last attempt never reached (it failed before
                // sending) share the call's error.
                let n = self.pipe.len();
                self.answered.append(&mut self.rest);
                if let Some(err) = err {
                    self.answered.resize_with(n, || Err(err.clone()));
                }
                Ok(self.answered)
            }
        }
    }

    /// Whether every command a transaction queues (between its `MULTI` and
    /// its `EXEC`) may be repeated.
    fn all_safe(&self) -> bool {
        (1..self.pipe.len().saturating_sub(1)).all(|i| self.safe_to_repeat(i))
    }

    /// Whether the `index`-th command may be repeated after an unknown
    /// outcome (decoded back from the pipeline: the cold path).
    fn safe_to_repeat(&self, index: usize) -> bool {
        self.pipe
            .command(index)
            .is_some_and(|cmd| command::repeat_safety(&cmd) != RepeatSafety::NotSafe)
    }
}

impl RetryTarget for PipelineCall<'_> {
    type Output = ();

    async fn attempt(&mut self, deadline: Option<Instant>) -> Result<()> {
        let client = self.client;
        let from = self.answered.len();
        // On a failure before sending, the last attempt's results stay: they
        // tell what may have run.
        let (conn, limit) = client.connection(deadline).await?;
        let (bytes, starts) = self.pipe.encoded_from(from)?;
        // Checked by the caller (`Pipeline::shared_use`).
        let mut replies = match conn.send_encoded(bytes, starts, limit).await {
            Ok(replies) => replies,
            Err(err) => {
                self.unsendable = true;
                return Err(err);
            }
        };
        // Any command left without its reply by a timeout makes the
        // connection suspect, whatever error replies came before it.
        if replies
            .iter()
            .any(|r| r.as_ref().is_err_and(super::is_suspect))
        {
            client.inner.keeper.retire(&conn);
        }
        // A command that may have run in an earlier attempt keeps saying so.
        for (reply, before) in replies.iter_mut().zip(&self.rest) {
            if let Err(err) = reply
                && !policy::may_have_run(err)
                && before.as_ref().is_err_and(policy::may_have_run)
            {
                *err = err.clone().with_delivery(Delivery::SentNoReply);
            }
        }
        if self.transaction {
            // All or nothing: the whole result stands or the whole
            // transaction is open.
            if let Some(Err(exec)) = replies.last() {
                let err = exec.clone();
                self.rest = replies;
                return Err(err);
            }
            self.answered = replies;
            // A failed attempt before this one left its replies here; they
            // are not results any more.
            self.rest.clear();
            return Ok(());
        }
        // Replies come in order: the final ones form a prefix.
        let retry = client.inner.retry.as_ref();
        let first_open = replies
            .iter()
            .position(|r| r.as_ref().is_err_and(|e| !is_final(e, retry)))
            .unwrap_or(replies.len());
        self.rest = replies.split_off(first_open);
        if self.answered.is_empty() {
            // The usual case, every reply in on the first attempt: the
            // vector the connection filled is the result, not copied.
            self.answered = replies;
        } else {
            self.answered.append(&mut replies);
        }
        // The first open result is an error by construction.
        match self.rest.first() {
            Some(Err(err)) => Err(err.clone()),
            _ => Ok(()),
        }
    }

    fn judge(&self, retry: &Retry, err: &Error, opted_in: bool) -> Result<(), Refusal> {
        if err.delivery() == Delivery::NotSent {
            // This attempt sent nothing: its own error decides, then what
            // earlier attempts left open.
            may_retry(retry, err, false, opted_in)?;
        }
        if self.transaction {
            // `err` is the EXEC's (or the attempt's): a transaction whose
            // EXEC never left ran nothing, the server discards it with the
            // connection; one whose EXEC may have arrived is repeated only
            // when every command in it is safe to repeat.
            return match self.rest.last() {
                Some(Err(exec)) => {
                    let safe = !opted_in && policy::may_have_run(exec) && self.all_safe();
                    may_retry(retry, exec, safe, opted_in)
                }
                _ => Ok(()),
            };
        }
        let from = self.answered.len();
        for (i, result) in self.rest.iter().enumerate() {
            let Err(err) = result else {
                // It ran after an earlier command was rejected: sending the
                // rest again would run it twice.
                return Err(Refusal::MayHaveRun);
            };
            // Decoding the command back is only worth it when it matters.
            let safe = !opted_in && policy::may_have_run(err) && self.safe_to_repeat(from + i);
            may_retry(retry, err, safe, opted_in)?;
        }
        Ok(())
    }
}

/// An error reply that is the command's answer: the server ran the command
/// (perhaps in part) or refused it for good. Not final: a lost reply, a
/// timeout, or a refusal that proves the command did not run
/// ([`Error::proves_not_run`]: LOADING, TRYAGAIN, ...) of a kind the retry
/// covers, after which the command may be sent again.
///
/// Any other error reply is final even when its kind is retried and the
/// command is safe to repeat (a GET answered WRONGTYPE) or the caller opted
/// in. A single command is retried then; in a pipeline the answer is kept,
/// as the rest re-sent from it would carry later commands that already ran,
/// and an answer that is not a refusal would most likely come back the same.
fn is_final(err: &Error, retry: Option<&Retry>) -> bool {
    err.delivery() == Delivery::Replied
        && !(err.proves_not_run() && retry.is_some_and(|r| r.is_supported(err.kind())))
}
