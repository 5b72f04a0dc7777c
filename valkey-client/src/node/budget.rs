//! [`RetryBudget`]: a token bucket shared by all the calls of one client, so
//! that an outage does not multiply the load on the server by the retry count.

use std::sync::Mutex;
use std::time::Instant;

/// A token bucket for retries. The first retry of each call is free, so a
/// dropped connection costs every caller at most one extra attempt; each
/// further retry of a request that reached the server (or may have) takes
/// one token. Tokens come back at a steady rate up to the capacity. When the
/// bucket is empty, failures are returned to the caller instead of retried,
/// so an outage adds at most one attempt per call plus the bucket to the
/// server's load, whatever the retry count.
///
/// Retries of requests that certainly did not run take no token: one never
/// sent costs the server nothing (connect attempts are shared by all
/// waiting callers), and one the server turned away before running it
/// (`LOADING`, `BUSY`, `TRYAGAIN`, ...: [`Error::proves_not_run`](crate::Error::proves_not_run))
/// cost it a rejection, paced by the backoff. So a restart that answers
/// `LOADING` for a while does not drain the budget of a busy client.
///
/// Nothing happens on the success path: the bucket refills with time, so a
/// healthy client never touches it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryBudget {
    /// Tokens the bucket holds when full (and at start).
    pub capacity: u32,
    /// Tokens added back per second.
    pub refill_per_second: f64,
}

impl Default for RetryBudget {
    /// 100 retries at once, then 10 per second.
    fn default() -> Self {
        RetryBudget {
            capacity: 100,
            refill_per_second: 10.0,
        }
    }
}

/// The running state of a [`RetryBudget`].
#[derive(Debug)]
pub(crate) struct Bucket {
    budget: RetryBudget,
    state: Mutex<(f64, Instant)>,
}

impl Bucket {
    pub(crate) fn new(budget: RetryBudget) -> Bucket {
        Bucket {
            budget,
            state: Mutex::new((f64::from(budget.capacity), Instant::now())),
        }
    }

    /// Takes one token if there is one.
    pub(crate) fn try_take(&self) -> bool {
        self.try_take_at(Instant::now())
    }

    fn try_take_at(&self, now: Instant) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let (tokens, last) = *state;
        let elapsed = now.saturating_duration_since(last).as_secs_f64();
        let tokens =
            (tokens + elapsed * self.budget.refill_per_second).min(f64::from(self.budget.capacity));
        if tokens >= 1.0 {
            *state = (tokens - 1.0, now);
            true
        } else {
            *state = (tokens, now);
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn empties_then_refills_with_time() {
        let bucket = Bucket::new(RetryBudget {
            capacity: 3,
            refill_per_second: 2.0,
        });
        let t0 = Instant::now();
        assert!(bucket.try_take_at(t0));
        assert!(bucket.try_take_at(t0));
        assert!(bucket.try_take_at(t0));
        assert!(!bucket.try_take_at(t0));
        assert!(!bucket.try_take_at(t0 + Duration::from_millis(400)));
        assert!(bucket.try_take_at(t0 + Duration::from_millis(600)));
        assert!(!bucket.try_take_at(t0 + Duration::from_millis(600)));
        // Never above capacity, however long it rests.
        let later = t0 + Duration::from_secs(3600);
        for _ in 0..3 {
            assert!(bucket.try_take_at(later));
        }
        assert!(!bucket.try_take_at(later));
    }
}
