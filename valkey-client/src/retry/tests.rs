//! The counting rules of `call_with_retry`, run through both flavours.

use std::cell::{Cell, RefCell};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::*;
use crate::backoff::{DecorrelatedJitterBackoff, ExponentialBackoff, FixedRandom, NoBackoff};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// What the spy backoff saw.
#[derive(Debug, Default)]
struct Log {
    computes: Vec<u32>,
    resets: u32,
}

/// A backoff recording its calls; waits `f` ms (or nothing when `zero`).
/// Clones share the log, since `Retry` clones the backoff for each call.
#[derive(Debug, Clone, Default)]
struct Spy {
    log: Arc<Mutex<Log>>,
    zero: bool,
}

impl Backoff for Spy {
    fn compute(&mut self, failures: u32) -> Duration {
        self.log.lock().unwrap().computes.push(failures);
        if self.zero {
            Duration::ZERO
        } else {
            ms(failures.into())
        }
    }

    fn reset(&mut self) {
        self.log.lock().unwrap().resets += 1;
    }

    fn clone_box(&self) -> Box<dyn Backoff> {
        Box::new(self.clone())
    }
}

/// One row of the table: a policy, the attempt outcomes, and which `fail`
/// call (1-based) errors, if any.
struct Case {
    name: &'static str,
    retries: Option<u32>,
    kinds: Option<Vec<ErrorKind>>,
    /// Outcome of attempt n is `script[n - 1]`, the last one repeating.
    script: Vec<Option<ErrorKind>>,
    fail_errors_at: Option<usize>,
    want: Want,
}

/// What a run did.
#[derive(Debug, PartialEq)]
struct Want {
    result: Result<usize, String>,
    ops: usize,
    fails: usize,
    computes: Vec<u32>,
    resets: u32,
    /// Time between consecutive attempts.
    gaps: Vec<Duration>,
}

impl Case {
    fn retry(&self, spy: Spy) -> Retry {
        let mut retry = match self.retries {
            Some(n) => Retry::new(spy, n),
            None => Retry::forever(spy),
        };
        if let Some(kinds) = &self.kinds {
            retry = retry.with_supported_errors(kinds.iter().copied());
        }
        retry
    }

    fn outcome(&self, attempt: usize) -> Result<usize, Error> {
        match self.script[(attempt - 1).min(self.script.len() - 1)] {
            None => Ok(attempt),
            Some(kind) => Err(Error::new(kind, format!("attempt {attempt}"))),
        }
    }

    fn fail_outcome(&self, call: usize) -> Result<(), Error> {
        match self.fail_errors_at {
            Some(at) if at == call => Err(Error::new(ErrorKind::Data, format!("fail {call}"))),
            _ => Ok(()),
        }
    }

    fn finish(
        &self,
        spy: &Spy,
        result: Result<usize, Error>,
        ops: usize,
        fails: usize,
        times: &[Duration],
    ) -> Want {
        let log = spy.log.lock().unwrap();
        Want {
            result: result.map_err(|e| e.message().to_owned()),
            ops,
            fails,
            computes: log.computes.clone(),
            resets: log.resets,
            gaps: times.windows(2).map(|w| w[1] - w[0]).collect(),
        }
    }

    /// Runs the case through the async flavour on a paused clock.
    fn run_async(&self) -> Want {
        let spy = Spy::default();
        let retry = self.retry(spy.clone());
        let ops = Cell::new(0);
        let fails = Cell::new(0);
        let times = RefCell::new(Vec::new());
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        let result = rt.block_on(async {
            let start = tokio::time::Instant::now();
            retry
                .call_with_retry(
                    || {
                        ops.set(ops.get() + 1);
                        times.borrow_mut().push(start.elapsed());
                        std::future::ready(self.outcome(ops.get()))
                    },
                    |_: &Error| {
                        fails.set(fails.get() + 1);
                        std::future::ready(self.fail_outcome(fails.get()))
                    },
                )
                .await
        });
        self.finish(&spy, result, ops.get(), fails.get(), &times.borrow())
    }

    /// Runs the case through the blocking flavour on a fake clock.
    fn run_blocking(&self) -> Want {
        let spy = Spy::default();
        let retry = self.retry(spy.clone());
        let ops = Cell::new(0);
        let fails = Cell::new(0);
        let clock = Cell::new(Duration::ZERO);
        let mut times = Vec::new();
        let result = retry.blocking_with_sleep(
            || {
                ops.set(ops.get() + 1);
                times.push(clock.get());
                self.outcome(ops.get())
            },
            |_| {
                fails.set(fails.get() + 1);
                self.fail_outcome(fails.get())
            },
            |wait| clock.set(clock.get() + wait),
        );
        self.finish(&spy, result, ops.get(), fails.get(), &times)
    }
}

fn want(
    result: Result<usize, &str>,
    ops: usize,
    fails: usize,
    computes: impl IntoIterator<Item = u32>,
) -> Want {
    let computes: Vec<u32> = computes.into_iter().collect();
    Want {
        result: result.map_err(str::to_owned),
        ops,
        fails,
        gaps: computes.iter().map(|&f| ms(f.into())).collect(),
        computes,
        resets: 1,
    }
}

fn table() -> Vec<Case> {
    use ErrorKind::*;
    let case = |name, retries, script: Vec<Option<ErrorKind>>, want| Case {
        name,
        retries,
        kinds: None,
        script,
        fail_errors_at: None,
        want,
    };
    let fail_then_ok = |k: usize, kind| {
        let mut s = vec![Some(kind); k];
        s.push(None);
        s
    };
    vec![
        case(
            "always failing, retries = 3",
            Some(3),
            vec![Some(Connection)],
            want(Err("attempt 4"), 4, 4, 1..=3),
        ),
        case(
            "always timing out, retries = 5",
            Some(5),
            vec![Some(Timeout)],
            want(Err("attempt 6"), 6, 6, 1..=5),
        ),
        case(
            "immediate success",
            Some(3),
            vec![None],
            want(Ok(1), 1, 0, []),
        ),
        case(
            "fail 1 then succeed",
            Some(3),
            fail_then_ok(1, Connection),
            want(Ok(2), 2, 1, [1]),
        ),
        case(
            "fail 2 then succeed",
            Some(3),
            fail_then_ok(2, Timeout),
            want(Ok(3), 3, 2, 1..=2),
        ),
        case(
            "fail k = N then succeed",
            Some(3),
            fail_then_ok(3, Connection),
            want(Ok(4), 4, 3, 1..=3),
        ),
        case(
            "unsupported error",
            Some(3),
            vec![Some(Response)],
            want(Err("attempt 1"), 1, 0, []),
        ),
        case(
            "client-side error",
            Some(3),
            vec![Some(Data)],
            want(Err("attempt 1"), 1, 0, []),
        ),
        case(
            "supported then unsupported",
            Some(3),
            vec![Some(Connection), Some(ReadOnly)],
            want(Err("attempt 2"), 2, 1, [1]),
        ),
        case(
            "retries = 0, failing",
            Some(0),
            vec![Some(Connection)],
            want(Err("attempt 1"), 1, 1, []),
        ),
        case(
            "retries = 0, success",
            Some(0),
            vec![None],
            want(Ok(1), 1, 0, []),
        ),
        case(
            "forever: 50 failures then success",
            None,
            fail_then_ok(50, Connection),
            want(Ok(51), 51, 50, 1..=50),
        ),
        case(
            "BusyLoading is in the Connection family",
            Some(3),
            fail_then_ok(2, BusyLoading),
            want(Ok(3), 3, 2, 1..=2),
        ),
        case(
            "Authentication is in the Connection family",
            Some(1),
            vec![Some(Authentication)],
            want(Err("attempt 2"), 2, 2, [1]),
        ),
        Case {
            fail_errors_at: Some(2),
            ..case(
                "fail errors mid-way",
                Some(5),
                vec![Some(Connection)],
                want(Err("fail 2"), 2, 2, [1]),
            )
        },
        Case {
            fail_errors_at: Some(1),
            ..case(
                "fail errors at once",
                Some(5),
                vec![Some(Connection)],
                want(Err("fail 1"), 1, 1, []),
            )
        },
        Case {
            fail_errors_at: Some(3),
            ..case(
                "fail errors after the last failure",
                Some(2),
                vec![Some(Connection)],
                want(Err("fail 3"), 3, 3, 1..=2),
            )
        },
        Case {
            kinds: Some(vec![Connection]),
            ..case(
                "Timeout is not covered by Connection",
                Some(3),
                vec![Some(Timeout)],
                want(Err("attempt 1"), 1, 0, []),
            )
        },
        Case {
            kinds: Some(vec![ReadOnly]),
            ..case(
                "replaced set: Connection no longer retried",
                Some(3),
                vec![Some(Connection)],
                want(Err("attempt 1"), 1, 0, []),
            )
        },
        Case {
            kinds: Some(vec![ReadOnly]),
            ..case(
                "replaced set: ReadOnly retried",
                Some(3),
                fail_then_ok(1, ReadOnly),
                want(Ok(2), 2, 1, [1]),
            )
        },
        Case {
            kinds: Some(vec![Response]),
            ..case(
                "Response covers server replies",
                Some(3),
                fail_then_ok(2, ReadOnly),
                want(Ok(3), 3, 2, 1..=2),
            )
        },
        Case {
            kinds: Some(vec![]),
            ..case(
                "empty set retries nothing",
                Some(3),
                vec![Some(Connection)],
                want(Err("attempt 1"), 1, 0, []),
            )
        },
    ]
}

#[test]
fn counting_table_blocking() {
    for case in table() {
        assert_eq!(case.run_blocking(), case.want, "blocking: {}", case.name);
    }
}

#[test]
fn counting_table_async() {
    for case in table() {
        assert_eq!(case.run_async(), case.want, "async: {}", case.name);
    }
}

#[test]
fn zero_waits_are_not_slept() {
    let spy = Spy {
        zero: true,
        ..Spy::default()
    };
    let retry = Retry::new(spy.clone(), 4);
    let mut sleeps = 0;
    let result: Result<(), ErrorKind> =
        retry.blocking_with_sleep(|| Err(ErrorKind::Connection), |_| Ok(()), |_| sleeps += 1);
    assert_eq!(result, Err(ErrorKind::Connection));
    assert_eq!(sleeps, 0);
    assert_eq!(spy.log.lock().unwrap().computes, [1, 2, 3, 4]);
}

#[test]
fn reset_once_per_call_even_on_success() {
    let spy = Spy::default();
    let retry = Retry::new(spy.clone(), 3);
    for _ in 0..3 {
        assert_eq!(retry.call_blocking(|| Ok::<_, Error>(7)).unwrap(), 7);
    }
    let log = spy.log.lock().unwrap();
    assert_eq!((log.resets, log.computes.len()), (3, 0));
}

#[tokio::test(start_paused = true)]
async fn async_sleeps_the_exponential_waits() {
    let retry = Retry::new(ExponentialBackoff::default(), 3);
    let start = tokio::time::Instant::now();
    let result: Result<(), Error> = retry
        .call(|| async { Err(Error::new(ErrorKind::Timeout, "slow")) })
        .await;
    assert_eq!(result.unwrap_err().kind(), ErrorKind::Timeout);
    assert_eq!(start.elapsed(), ms(16 + 32 + 64));
}

#[tokio::test(start_paused = true)]
async fn each_call_gets_its_own_backoff_state() {
    // Decorrelated at r = 1: 8, 24, 72 ms. A shared state would make the
    // second call start above 8 ms.
    let backoff = DecorrelatedJitterBackoff::default().with_random(FixedRandom(1.0));
    let retry = Retry::new(backoff, 2);
    for _ in 0..2 {
        let start = tokio::time::Instant::now();
        let result: Result<(), ErrorKind> =
            retry.call(|| async { Err(ErrorKind::Connection) }).await;
        assert_eq!(result, Err(ErrorKind::Connection));
        assert_eq!(start.elapsed(), ms(8 + 24));
    }
}

#[test]
fn supported_errors_defaults_replace_and_union() {
    use ErrorKind::*;
    let mut retry = Retry::new(NoBackoff, 3);
    assert_eq!(retry.supported_errors(), [Connection, Timeout]);
    assert!(retry.is_supported(BusyLoading));
    assert!(retry.is_supported(Authentication));
    assert!(retry.is_supported(MaxConnections));
    assert!(!retry.is_supported(ReadOnly));
    assert!(!retry.is_supported(Response));
    retry.update_supported_errors([ReadOnly, Timeout, ReadOnly]);
    assert_eq!(retry.supported_errors(), [Connection, Timeout, ReadOnly]);
    assert!(retry.is_supported(ReadOnly));
    assert!(!retry.is_supported(Moved));
    let only_timeout = retry.clone().with_supported_errors([Timeout]);
    assert_eq!(only_timeout.supported_errors(), [Timeout]);
    assert!(!only_timeout.is_supported(Connection));
    assert!(!only_timeout.is_supported(BusyLoading));
    // The clone was independent.
    assert_eq!(retry.supported_errors().len(), 3);
}

#[test]
fn retries_and_forever() {
    assert_eq!(Retry::new(NoBackoff, 3).retries(), Some(3));
    assert_eq!(Retry::new(NoBackoff, 0).retries(), Some(0));
    let forever = Retry::forever(NoBackoff);
    assert_eq!(forever.retries(), None);
    assert_eq!(
        forever.supported_errors(),
        [ErrorKind::Connection, ErrorKind::Timeout]
    );
}

#[test]
fn backoff_accessor_is_a_fresh_copy() {
    let retry = Retry::new(ExponentialBackoff::new(ms(100), ms(1)), 3);
    let mut b = retry.backoff();
    assert_eq!(b.compute(3), ms(8));
    // A boxed backoff can build a new policy.
    let again = Retry::new(b, 1);
    assert_eq!(again.backoff().compute(10), ms(100));
}

#[test]
fn io_errors_are_classified() {
    use std::io::{Error as IoError, ErrorKind as Io};
    let kind = |k| IoError::from(k).error_kind();
    assert_eq!(kind(Io::TimedOut), Some(ErrorKind::Timeout));
    assert_eq!(kind(Io::WouldBlock), Some(ErrorKind::Timeout));
    for k in [
        Io::ConnectionRefused,
        Io::ConnectionReset,
        Io::ConnectionAborted,
        Io::NotConnected,
        Io::BrokenPipe,
        Io::UnexpectedEof,
    ] {
        assert_eq!(kind(k), Some(ErrorKind::Connection), "{k:?}");
    }
    for k in [
        Io::NotFound,
        Io::InvalidInput,
        Io::PermissionDenied,
        Io::Other,
    ] {
        assert_eq!(kind(k), None, "{k:?}");
    }
    assert_eq!(
        Error::new(ErrorKind::BusyLoading, "loading").error_kind(),
        Some(ErrorKind::BusyLoading)
    );
}

#[test]
fn io_errors_retry_by_class() {
    use std::io::{Error as IoError, ErrorKind as Io};
    let retry = Retry::new(NoBackoff, 2);
    let mut calls = 0;
    let r: Result<(), IoError> = retry.call_blocking(|| {
        calls += 1;
        Err(IoError::from(Io::ConnectionReset))
    });
    assert_eq!((r.unwrap_err().kind(), calls), (Io::ConnectionReset, 3));
    calls = 0;
    let r: Result<(), IoError> = retry.call_blocking(|| {
        calls += 1;
        Err(IoError::from(Io::NotFound))
    });
    assert_eq!((r.unwrap_err().kind(), calls), (Io::NotFound, 1));
}

#[test]
fn async_call_is_send() {
    fn assert_send<T: Send>(_: T) {}
    let retry = Retry::new(NoBackoff, 1);
    assert_send(
        retry.call_with_retry(|| async { Ok::<_, Error>(1) }, |_: &Error| async { Ok(()) }),
    );
}
