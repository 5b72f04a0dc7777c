//! The one retry loop: it repeats a failed [`RetryTarget`] under a
//! [`RetryPolicy`] and one deadline, and says why it gave up. The standalone
//! client runs every call through it; the cluster client will run each
//! node's attempts through it and act on the reason it gave up (a node
//! whose retry is spent on connection errors is dropped and the topology
//! read again).

use std::future::Future;

use tokio::time::Instant;

use super::budget::Bucket;
use super::events::{Event, EventListener, GiveUpReason, emit};
use super::policy::{self, Refusal};
use crate::error::{Delivery, Error, Result};
use crate::retry::{Attempts, Retry};

/// What the retry loop repeats: one command, what is left of a pipeline,
/// opening a connection.
pub(crate) trait RetryTarget {
    /// What a successful attempt gives.
    type Output;

    /// One attempt, within what is left of the deadline.
    fn attempt(
        &mut self,
        deadline: Option<Instant>,
    ) -> impl Future<Output = Result<Self::Output>> + Send;

    /// Whether the last attempt's failure `err` may be retried.
    fn judge(&self, retry: &Retry, err: &Error, opted_in: bool) -> Result<(), Refusal>;
}

/// The policy one call runs under.
pub(crate) struct RetryPolicy<'a> {
    /// `None`: nothing is retried.
    pub(crate) retry: Option<&'a Retry>,
    /// Shared by every call of a client.
    pub(crate) budget: Option<&'a Bucket>,
    pub(crate) listener: Option<&'a EventListener>,
    /// The caller accepts that a command that may have run runs again.
    pub(crate) opted_in: bool,
    /// Told of every failure, the first included (the client's keeper
    /// reconnects in the background when a failure closed the connection).
    pub(crate) on_failure: &'a (dyn Fn(&Error) + Sync),
    /// Report the give-up as an event. The cluster client reports its own,
    /// once the whole command is given up, not each node's.
    pub(crate) report_give_up: bool,
}

/// A call the loop gave up on: the error to return and why. The standalone
/// client returns only the error (the reason went out as an event); the
/// cluster client acts on the reason, so it is kept here.
#[derive(Debug)]
pub(crate) struct GaveUp {
    /// The last attempt's error, its delivery the strongest of all attempts.
    pub(crate) error: Error,
    pub(crate) reason: GiveUpReason,
    /// Attempts made, the first included.
    pub(crate) attempts: u32,
}

/// Repeats `target` after its first failure `err` until it succeeds or
/// must stop: the error's kind is not retried, the command may have run and
/// is not safe to repeat, the retries, the budget or the deadline are
/// spent. The error returned reports the strongest delivery state of all
/// attempts: `NotSent` only when no attempt may have run.
pub(crate) async fn retry_loop<A: RetryTarget>(
    policy: &RetryPolicy<'_>,
    command: &str,
    target: &mut A,
    deadline: Option<Instant>,
    mut err: Error,
) -> Result<A::Output, GaveUp> {
    let listener = policy.listener;
    let mut may_have_run = policy::may_have_run(&err);
    let give_up = |err: Error, attempts: u32, reason: GiveUpReason, may_have_run: bool| {
        let error = if may_have_run && !policy::may_have_run(&err) {
            // An earlier attempt may have run: the last one's NotSent
            // would tell the caller it certainly did not.
            err.with_delivery(Delivery::SentNoReply)
        } else {
            err
        };
        if policy.report_give_up {
            emit(
                listener,
                Event::GaveUp {
                    command,
                    attempts,
                    reason,
                    error: &error,
                },
            );
        }
        Err(GaveUp {
            error,
            reason,
            attempts,
        })
    };
    (policy.on_failure)(&err);
    let Some(retry) = policy.retry else {
        return give_up(err, 1, GiveUpReason::NotRetried, may_have_run);
    };
    // The counting rules of `Retry::call_with_retry`, shared: the backoff
    // reset once, a failure counted, exhaustion, the wait.
    let mut count = Attempts::start(retry);
    loop {
        // The attempt just failed is the one after those counted.
        let attempts = count.failures().saturating_add(1);
        match target.judge(retry, &err, policy.opted_in) {
            Ok(()) => {}
            Err(Refusal::KindNotRetried) => {
                return give_up(err, attempts, GiveUpReason::NotRetried, may_have_run);
            }
            Err(Refusal::MayHaveRun) => {
                return give_up(err, attempts, GiveUpReason::MayHaveRun, may_have_run);
            }
        }
        count.count();
        let Some(wait) = count.next_wait() else {
            return give_up(err, attempts, GiveUpReason::RetriesExhausted, may_have_run);
        };
        if deadline.is_some_and(|d| d.saturating_duration_since(Instant::now()) <= wait) {
            return give_up(err, attempts, GiveUpReason::DeadlineReached, may_have_run);
        }
        // The first retry of a call is free (at most doubling the load);
        // later ones after an attempt that may have run draw on the shared
        // budget. Taken after the deadline check: a call that gives up on
        // its deadline spends nothing.
        if attempts > 1
            && policy::may_have_run(&err)
            && policy.budget.is_some_and(|b| !b.try_take())
        {
            return give_up(err, attempts, GiveUpReason::BudgetExhausted, may_have_run);
        }
        emit(
            listener,
            Event::Retry {
                command,
                attempt: attempts,
                wait,
                error: &err,
            },
        );
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        match target.attempt(deadline).await {
            Ok(value) => return Ok(value),
            Err(next) => {
                (policy.on_failure)(&next);
                may_have_run |= policy::may_have_run(&next);
                err = next;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use super::*;
    use crate::backoff::NoBackoff;
    use crate::error::ErrorKind;

    /// Fails with the scripted errors in turn, then succeeds.
    struct Scripted {
        errors: VecDeque<Error>,
        attempts: u32,
        safe: bool,
    }

    impl RetryTarget for Scripted {
        type Output = u32;

        async fn attempt(&mut self, _deadline: Option<Instant>) -> Result<u32> {
            self.attempts += 1;
            match self.errors.pop_front() {
                Some(err) => Err(err),
                None => Ok(self.attempts),
            }
        }

        fn judge(&self, retry: &Retry, err: &Error, opted_in: bool) -> Result<(), Refusal> {
            policy::may_retry(retry, err, self.safe, opted_in)
        }
    }

    fn err(kind: ErrorKind, delivery: Delivery) -> Error {
        Error::new(kind, "scripted").with_delivery(delivery)
    }

    async fn run(retry: Option<&Retry>, safe: bool, errors: Vec<Error>) -> Result<u32, GaveUp> {
        let mut errors: VecDeque<Error> = errors.into();
        let first = errors.pop_front().expect("a first failure");
        let mut target = Scripted {
            errors,
            attempts: 1,
            safe,
        };
        let policy = RetryPolicy {
            retry,
            budget: None,
            listener: None,
            opted_in: false,
            on_failure: &|_| {},
            report_give_up: true,
        };
        retry_loop(&policy, "TEST", &mut target, None, first).await
    }

    #[tokio::test]
    async fn gives_up_with_the_reason_and_the_attempts_made() {
        use Delivery::*;
        use ErrorKind::*;
        let retry = Retry::new(NoBackoff, 2);
        // (retry, safe, errors) -> Ok(attempts) or (reason, attempts)
        let gave_up = run(None, true, vec![err(Connection, NotSent)])
            .await
            .unwrap_err();
        assert_eq!(
            (gave_up.reason, gave_up.attempts),
            (GiveUpReason::NotRetried, 1)
        );
        let fails = vec![err(Connection, NotSent); 3];
        let gave_up = run(Some(&retry), true, fails).await.unwrap_err();
        assert_eq!(
            (gave_up.reason, gave_up.attempts),
            (GiveUpReason::RetriesExhausted, 3)
        );
        let gave_up = run(Some(&retry), false, vec![err(Timeout, SentNoReply)])
            .await
            .unwrap_err();
        assert_eq!(
            (gave_up.reason, gave_up.attempts),
            (GiveUpReason::MayHaveRun, 1)
        );
        let gave_up = run(Some(&retry), true, vec![err(Data, NotSent)])
            .await
            .unwrap_err();
        assert_eq!(
            (gave_up.reason, gave_up.attempts),
            (GiveUpReason::NotRetried, 1)
        );
        let ok = run(Some(&retry), true, vec![err(Connection, NotSent); 2]).await;
        assert_eq!(ok.unwrap(), 3);
    }

    #[tokio::test]
    async fn not_sent_only_when_no_attempt_may_have_run() {
        use Delivery::*;
        use ErrorKind::*;
        let retry = Retry::new(NoBackoff, 2);
        // Written and lost, then refused twice: the last error says NotSent,
        // the call's says the command may have run.
        let errors = vec![
            err(Connection, SentNoReply),
            err(Connection, NotSent),
            err(Connection, NotSent),
        ];
        let gave_up = run(Some(&retry), true, errors).await.unwrap_err();
        assert_eq!(gave_up.error.delivery(), SentNoReply);
        // Refused every time: it never ran.
        let gave_up = run(Some(&retry), true, vec![err(Connection, NotSent); 3])
            .await
            .unwrap_err();
        assert_eq!(gave_up.error.delivery(), NotSent);
    }
}
