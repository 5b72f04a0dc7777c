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
/// At most once by default: a request that may have reached the server
/// without a reply is retried only when repeating it is safe or the caller
/// opted in. A request never sent, or one the server rejected with a reply
/// (LOADING, TRYAGAIN, MOVED, READONLY, ... : the command did not run), is
/// always safe to send again.
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
        Delivery::NotSent | Delivery::Replied => Ok(()),
        Delivery::SentNoReply if safe_to_repeat || repeat_opt_in => Ok(()),
        Delivery::SentNoReply => Err(Refusal::MayHaveRun),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backoff::ExponentialBackoff;

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

    #[test]
    fn at_most_once_table() {
        use Delivery::*;
        use ErrorKind::*;
        let retry = Retry::new(NoBackoff, 3).with_supported_errors([Connection, Timeout, ReadOnly]);
        // (kind, delivery, safe to repeat, opted in) -> verdict
        let table = [
            (Connection, NotSent, false, false, Ok(())),
            (
                Connection,
                SentNoReply,
                false,
                false,
                Err(Refusal::MayHaveRun),
            ),
            (Connection, SentNoReply, true, false, Ok(())),
            (Connection, SentNoReply, false, true, Ok(())),
            (Timeout, SentNoReply, false, false, Err(Refusal::MayHaveRun)),
            (Timeout, SentNoReply, true, false, Ok(())),
            // LOADING is in the Connection family and proves nothing ran.
            (BusyLoading, Replied, false, false, Ok(())),
            (ReadOnly, Replied, false, false, Ok(())),
            (
                Response,
                Replied,
                false,
                false,
                Err(Refusal::KindNotRetried),
            ),
            (
                InvalidResponse,
                SentNoReply,
                true,
                true,
                Err(Refusal::KindNotRetried),
            ),
        ];
        for (kind, delivery, safe, opt_in, verdict) in table {
            assert_eq!(
                may_retry(&retry, &err(kind, delivery), safe, opt_in),
                verdict,
                "{kind:?} {delivery:?} safe={safe} opt_in={opt_in}"
            );
        }
    }
}
