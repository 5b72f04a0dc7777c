//! What the retry loop repeats: one command, or the unanswered rest of a
//! pipeline. Each knows how to make one attempt and whether its last
//! failure may be retried.

use std::future::Future;

use tokio::time::Instant;

use super::Valkey;
use super::policy::{Refusal, may_retry};
use crate::cmd::Cmd;
use crate::command::{self, RepeatSafety};
use crate::error::{Delivery, Error, Result};
use crate::pipeline::Pipeline;
use crate::resp::Value;
use crate::retry::Retry;

/// A call the retry loop can repeat.
pub(super) trait Call {
    /// What a successful call gives.
    type Output;

    /// One attempt, within what is left of the deadline.
    fn attempt(
        &mut self,
        client: &Valkey,
        deadline: Option<Instant>,
    ) -> impl Future<Output = Result<Self::Output>> + Send;

    /// Whether the last attempt's failure `err` may be retried.
    fn judge(&self, retry: &Retry, err: &Error, opted_in: bool) -> Result<(), Refusal>;
}

/// One command.
pub(super) struct Single<'a> {
    cmd: &'a Cmd,
    safe: bool,
}

impl<'a> Single<'a> {
    /// Built on the first failure only: the command table lookup is not paid
    /// on the happy path.
    pub(super) fn new(cmd: &'a Cmd) -> Single<'a> {
        Single {
            cmd,
            safe: command::repeat_safety(cmd) != RepeatSafety::NotSafe,
        }
    }
}

impl Call for Single<'_> {
    type Output = Value;

    async fn attempt(&mut self, client: &Valkey, deadline: Option<Instant>) -> Result<Value> {
        client.attempt(self.cmd, deadline).await
    }

    fn judge(&self, retry: &Retry, err: &Error, opted_in: bool) -> Result<(), Refusal> {
        may_retry(retry, err, self.safe, opted_in)
    }
}

/// A pipeline: commands that got their answer keep it; a retry re-sends only
/// the unanswered rest, and only when each of those commands may be sent
/// again (never sent, rejected by the server, or safe to repeat).
pub(super) struct PipelineCall<'p> {
    pipe: &'p mut Pipeline,
    /// Final results of the first commands, in order.
    answered: Vec<Result<Value>>,
    /// The last attempt's results for the rest: errors, and possibly
    /// replies that came after a rejection.
    rest: Vec<Result<Value>>,
    /// The pipeline cannot be sent at all (too many commands).
    unsendable: bool,
}

impl<'p> PipelineCall<'p> {
    pub(super) fn new(pipe: &'p mut Pipeline) -> PipelineCall<'p> {
        PipelineCall {
            answered: Vec::new(),
            pipe,
            rest: Vec::new(),
            unsendable: false,
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
}

impl Call for PipelineCall<'_> {
    type Output = ();

    async fn attempt(&mut self, client: &Valkey, deadline: Option<Instant>) -> Result<()> {
        let from = self.answered.len();
        // On a failure before sending, the last attempt's results stay: they
        // tell what may have run.
        let (conn, limit) = client.connection(deadline).await?;
        let (bytes, starts) = self.pipe.encoded_from(from)?;
        let mut replies = match conn.send_encoded(bytes, starts, limit).await {
            Ok(replies) => replies,
            Err(err) => {
                self.unsendable = true;
                return Err(err);
            }
        };
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
        let from = self.answered.len();
        for (i, result) in self.rest.iter().enumerate() {
            let Err(err) = result else {
                // It ran after an earlier command was rejected: sending the
                // rest again would run it twice.
                return Err(Refusal::MayHaveRun);
            };
            // Decoding the command back is only worth it when it matters.
            let safe = err.delivery() == Delivery::SentNoReply
                && !opted_in
                && self
                    .pipe
                    .command(from + i)
                    .is_some_and(|cmd| command::repeat_safety(&cmd) != RepeatSafety::NotSafe);
            may_retry(retry, err, safe, opted_in)?;
        }
        Ok(())
    }
}

/// An error reply that is the command's answer: the server ran the command
/// or refused it for good. Not final: a lost reply, a timeout, or a
/// rejection the retry covers (LOADING, TRYAGAIN, ...), after which the
/// command may be sent again.
fn is_final(err: &Error, retry: Option<&Retry>) -> bool {
    err.delivery() == Delivery::Replied && !retry.is_some_and(|r| r.is_supported(err.kind()))
}
