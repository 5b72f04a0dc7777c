//! The retry policy of the standalone client: which `Retry` is in force
//! (section 3 of the retry semantics), and whether one failure may be retried.
//! Pure functions, tested as tables without a server.

use crate::backoff::NoBackoff;
use crate::error::{Delivery, Error, ErrorKind};
use crate::retry::Retry;

/// The `Retry` in force given the three user options, per the table:
///
/// | given | effective retry | kinds retried |
/// |---|---|---|
/// | nothing | none | none |
/// | retry_on_timeout | Retry(NoBackoff, 1) | Timeout |
/// | retry_on_error [X..] | Retry(NoBackoff, 1) | X.. |
/// | retry R only | R | R's supported errors |
/// | R + retry_on_error [X..] | R | R's supported errors plus X.. |
/// | R + retry_on_timeout | R | R's supported errors plus Timeout |
pub(crate) fn effective_retry(
    retry: Option<&Retry>,
    retry_on_error: &[ErrorKind],
    retry_on_timeout: bool,
) -> Option<Retry> {
    let mut extra = retry_on_error.to_vec();
    if retry_on_timeout {
        extra.push(ErrorKind::Timeout);
    }
    match retry {
        Some(retry) => {
            let mut retry = retry.clone();
            retry.update_supported_errors(extra);
            Some(retry)
        }
        None if extra.is_empty() => None,
        None => Some(Retry::new(NoBackoff, 1).with_supported_errors(extra)),
    }
}

/// Why a failure is not retried (before counting attempts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The error's kind is not in the retried set.
    KindNotRetried,
    /// The request may have run and the command is not safe to repeat.
    MayHaveRun,
}

/// Whether a failed attempt may be retried, given the retried kinds, where
/// the request stood, and whether repeating the command is harmless.
///
/// At most once by default: a request that may have run is retried only
/// when repeating it is safe (read-only or idempotent) or the caller opted
/// in. A request never sent, or one the server refused before running it
/// ([`Error::proves_not_run`]: LOADING, TRYAGAIN, MOVED, READONLY, ...), is
/// always safe to send again. Any other error reply counts as "may have
/// run", like a lost reply: an EVAL that wrote and then failed keeps its
/// writes, so sending it again would apply them twice.
pub(crate) fn may_retry(
    retry: &Retry,
    err: &Error,
    safe_to_repeat: bool,
    repeat_opt_in: bool,
) -> Result<(), Refusal> {
    if !retry.is_supported(err.kind()) {
        return Err(Refusal::KindNotRetried);
    }
    match err.delivery() {
        Delivery::NotSent => Ok(()),
        Delivery::Replied if err.proves_not_run() => Ok(()),
        Delivery::Replied | Delivery::SentNoReply if safe_to_repeat || repeat_opt_in => Ok(()),
        Delivery::Replied | Delivery::SentNoReply => Err(Refusal::MayHaveRun),
    }
}

/// Whether the request behind a failure may have run: it was written and no
/// reply came, or the server answered with an error that does not prove it
/// refused the command before running it. `false` means it certainly did
/// not run.
pub(crate) fn may_have_run(err: &Error) -> bool {
    match err.delivery() {
        Delivery::NotSent => false,
        Delivery::SentNoReply => true,
        Delivery::Replied => !err.proves_not_run(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backoff::ExponentialBackoff;
    use crate::resp::ServerError;

    fn kinds(retry: &Option<Retry>) -> Vec<ErrorKind> {
        let mut k: Vec<ErrorKind> = retry
            .as_ref()
            .map(|r| r.supported_errors().to_vec())
            .unwrap_or_default();
        k.sort_by_key(|k| format!("{k:?}"));
        k
    }

    #[test]
    fn resolution_table() {
        use ErrorKind::*;
        let r = Retry::new(ExponentialBackoff::default(), 3);

        let none = effective_retry(None, &[], false);
        assert!(none.is_none());

        let only_timeout = effective_retry(None, &[], true).unwrap();
        assert_eq!(only_timeout.retries(), Some(1));
        assert_eq!(
            format!("{:?}", only_timeout.backoff()),
            format!("{:?}", NoBackoff)
        );
        assert_eq!(kinds(&Some(only_timeout)), vec![Timeout]);

        let on_error = effective_retry(None, &[BusyLoading, ReadOnly], false).unwrap();
        assert_eq!(on_error.retries(), Some(1));
        assert_eq!(kinds(&Some(on_error)), vec![BusyLoading, ReadOnly]);

        let given = effective_retry(Some(&r), &[], false).unwrap();
        assert_eq!(given.retries(), Some(3));
        assert_eq!(kinds(&Some(given)), vec![Connection, Timeout]);

        let plus_errors = effective_retry(Some(&r), &[BusyLoading, ReadOnly], false).unwrap();
        assert_eq!(plus_errors.retries(), Some(3));
        assert_eq!(
            kinds(&Some(plus_errors)),
            vec![BusyLoading, Connection, ReadOnly, Timeout]
        );

        let r_conn_only =
            Retry::new(ExponentialBackoff::default(), 3).with_supported_errors([Connection]);
        let plus_timeout = effective_retry(Some(&r_conn_only), &[], true).unwrap();
        assert_eq!(kinds(&Some(plus_timeout)), vec![Connection, Timeout]);
        // The user's Retry itself is not changed.
        assert_eq!(kinds(&Some(r_conn_only)), vec![Connection]);
    }

    fn err(kind: ErrorKind, delivery: Delivery) -> Error {
        Error::new(kind, "test").with_delivery(delivery)
    }

    /// A server error reply, as the connection builds it.
    fn reply(line: &str) -> Error {
        Error::from_server(ServerError::from_line(line.as_bytes()))
    }

    #[test]
    fn at_most_once_table() {
        use Delivery::*;
        use ErrorKind::*;
        let retry = Retry::new(NoBackoff, 3).with_supported_errors([Connection, Timeout, ReadOnly]);
        let retry_response = Retry::new(NoBackoff, 3).with_supported_errors([Response]);
        // What an EVAL answers when its script wrote and then failed.
        let eval_failed = || reply("ERR boom");
        // (retry, failure, safe to repeat, opted in) -> verdict
        let table = [
            (&retry, err(Connection, NotSent), false, false, Ok(())),
            (
                &retry,
                err(Connection, SentNoReply),
                false,
                false,
                Err(Refusal::MayHaveRun),
            ),
            (&retry, err(Connection, SentNoReply), true, false, Ok(())),
            (&retry, err(Connection, SentNoReply), false, true, Ok(())),
            (
                &retry,
                err(Timeout, SentNoReply),
                false,
                false,
                Err(Refusal::MayHaveRun),
            ),
            (&retry, err(Timeout, SentNoReply), true, false, Ok(())),
            // LOADING is in the Connection family and proves nothing ran.
            (
                &retry,
                reply("LOADING Valkey is loading the dataset in memory"),
                false,
                false,
                Ok(()),
            ),
            (
                &retry,
                reply("READONLY You can't write against a read only replica."),
                false,
                false,
                Ok(()),
            ),
            // The kind decides first, whatever the reply proves.
            (
                &retry,
                eval_failed(),
                true,
                true,
                Err(Refusal::KindNotRetried),
            ),
            (
                &retry,
                reply("NOSCRIPT No matching script."),
                false,
                false,
                Err(Refusal::KindNotRetried),
            ),
            (
                &retry,
                err(InvalidResponse, SentNoReply),
                true,
                true,
                Err(Refusal::KindNotRetried),
            ),
            // An error reply that proves nothing: at most once, as for a
            // lost reply...
            (
                &retry_response,
                eval_failed(),
                false,
                false,
                Err(Refusal::MayHaveRun),
            ),
            (
                &retry_response,
                reply("ERR user_script:1: oops script: on @user_script:1."),
                false,
                false,
                Err(Refusal::MayHaveRun),
            ),
            // ...unless the caller accepts running it twice...
            (&retry_response, eval_failed(), false, true, Ok(())),
            // ...or the command is read-only or idempotent.
            (
                &retry_response,
                reply("WRONGTYPE Operation against a key holding the wrong kind of value"),
                true,
                false,
                Ok(()),
            ),
            // A reply without a server code proves nothing either.
            (
                &retry,
                err(ReadOnly, Replied),
                false,
                false,
                Err(Refusal::MayHaveRun),
            ),
            // Refusals before execution, on commands not safe to repeat.
            (
                &retry_response,
                reply("NOSCRIPT No matching script."),
                false,
                false,
                Ok(()),
            ),
            (
                &retry_response,
                reply("READONLY You can't write against a read only replica."),
                false,
                false,
                Ok(()),
            ),
            (
                &retry_response,
                reply("TRYAGAIN Multiple keys request during rehashing of slot"),
                false,
                false,
                Ok(()),
            ),
            (
                &retry_response,
                reply("OOM command not allowed when used memory > 'maxmemory'."),
                false,
                false,
                Ok(()),
            ),
            (
                &retry_response,
                reply("NOPERM User ro has no permissions to run the 'incr' command"),
                false,
                false,
                Ok(()),
            ),
            (
                &retry_response,
                reply(
                    "BUSY Valkey is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.",
                ),
                false,
                false,
                Ok(()),
            ),
            (
                &retry_response,
                reply("MOVED 3999 127.0.0.1:6381"),
                false,
                false,
                Ok(()),
            ),
        ];
        for (retry, failure, safe, opt_in, verdict) in table {
            assert_eq!(
                may_retry(retry, &failure, safe, opt_in),
                verdict,
                "{failure:?} safe={safe} opt_in={opt_in}"
            );
        }
    }
}
