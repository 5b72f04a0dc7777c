//! Backoff strategies: how long to wait before each retry.
//!
//! The same strategies as valkey-py's `valkey.backoff`, with the same
//! defaults (`cap` = 512 ms, `base` = 8 ms) and constructor order
//! `(cap, base)`. `failures` passed to [`Backoff::compute`] is 1 on the first
//! retry. With `E(f) = min(cap, base * 2^f)`:
//!
//! | strategy | `compute(f)` |
//! |---|---|
//! | [`NoBackoff`] | 0 |
//! | [`ConstantBackoff`] | the given duration |
//! | [`ExponentialBackoff`] | `E(f)` |
//! | [`FullJitterBackoff`] | uniform in `[0, E(f)]` |
//! | [`EqualJitterBackoff`] | `E(f)/2` + uniform in `[0, E(f)/2]` |
//! | [`DecorrelatedJitterBackoff`] | uniform in `[base, max(base, 3 * prev)]`, capped |
//!
//! Jittered strategies draw from a [`RandomSource`], replaceable with
//! `with_random` (e.g. [`FixedRandom`]) for exact tests.

mod jitter;
mod random;

use std::time::Duration;

pub use jitter::{DecorrelatedJitterBackoff, EqualJitterBackoff, FullJitterBackoff};
pub use random::{FastRandom, FixedRandom, RandomSource, ScriptedRandom};

/// The default upper bound of a computed backoff: 512 ms.
pub const DEFAULT_CAP: Duration = Duration::from_millis(512);
/// The default base of the exponential strategies: 8 ms.
pub const DEFAULT_BASE: Duration = Duration::from_millis(8);

/// A strategy giving the wait before each retry.
///
/// Stateful strategies (decorrelated jitter) keep their state between calls
/// of [`compute`](Backoff::compute); [`Retry`](crate::Retry) clones the
/// strategy for each call and [`reset`](Backoff::reset)s it first, so calls
/// never share state.
pub trait Backoff: Send + Sync + std::fmt::Debug {
    /// The wait before retry number `failures` (1 on the first retry).
    fn compute(&mut self, failures: u32) -> Duration;

    /// Forgets any state, as before a new sequence of retries.
    fn reset(&mut self);

    /// A boxed copy, so that `Box<dyn Backoff>` is [`Clone`].
    fn clone_box(&self) -> Box<dyn Backoff>;
}

impl Clone for Box<dyn Backoff> {
    fn clone(&self) -> Self {
        self.clone_box()
    }
}

/// A boxed strategy is a strategy, so [`Retry::backoff`](crate::Retry::backoff)'s
/// result can be handed back to a new `Retry`.
impl Backoff for Box<dyn Backoff> {
    fn compute(&mut self, failures: u32) -> Duration {
        (**self).compute(failures)
    }

    fn reset(&mut self) {
        (**self).reset()
    }

    fn clone_box(&self) -> Box<dyn Backoff> {
        (**self).clone_box()
    }
}

/// The strategy used when none is given: [`EqualJitterBackoff`] with the
/// defaults, as in valkey-py.
pub fn default_backoff() -> EqualJitterBackoff {
    EqualJitterBackoff::default()
}

/// No wait at all: retry at once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NoBackoff;

impl Backoff for NoBackoff {
    fn compute(&mut self, _failures: u32) -> Duration {
        Duration::ZERO
    }

    fn reset(&mut self) {}

    fn clone_box(&self) -> Box<dyn Backoff> {
        Box::new(*self)
    }
}

/// The same wait before every retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConstantBackoff {
    backoff: Duration,
}

impl ConstantBackoff {
    /// Waits `backoff` before every retry.
    pub fn new(backoff: Duration) -> ConstantBackoff {
        ConstantBackoff { backoff }
    }
}

/// Waits [`DEFAULT_BASE`] (8 ms), a small pause like the other defaults.
impl Default for ConstantBackoff {
    fn default() -> Self {
        ConstantBackoff::new(DEFAULT_BASE)
    }
}

impl Backoff for ConstantBackoff {
    fn compute(&mut self, _failures: u32) -> Duration {
        self.backoff
    }

    fn reset(&mut self) {}

    fn clone_box(&self) -> Box<dyn Backoff> {
        Box::new(*self)
    }
}

/// Doubling waits: `min(cap, base * 2^failures)`, no jitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExponentialBackoff {
    cap: Duration,
    base: Duration,
}

impl ExponentialBackoff {
    /// Waits `min(cap, base * 2^failures)`. Note the order: cap first.
    pub fn new(cap: Duration, base: Duration) -> ExponentialBackoff {
        ExponentialBackoff { cap, base }
    }
}

/// `cap` = 512 ms, `base` = 8 ms: 16, 32, 64, 128, 256, 512, 512, ... ms.
impl Default for ExponentialBackoff {
    fn default() -> Self {
        ExponentialBackoff::new(DEFAULT_CAP, DEFAULT_BASE)
    }
}

impl Backoff for ExponentialBackoff {
    fn compute(&mut self, failures: u32) -> Duration {
        exponential(self.cap, self.base, failures)
    }

    fn reset(&mut self) {}

    fn clone_box(&self) -> Box<dyn Backoff> {
        Box::new(*self)
    }
}

/// `E(f) = min(cap, base * 2^f)`, saturating at `cap` however large `f` is.
pub(crate) fn exponential(cap: Duration, base: Duration, failures: u32) -> Duration {
    let base_ns = base.as_nanos();
    if base_ns == 0 {
        return Duration::ZERO;
    }
    // base * 2^f overflows u128 exactly when f >= leading zeros of base.
    if failures >= base_ns.leading_zeros() {
        return cap;
    }
    from_nanos(base_ns << failures).min(cap)
}

/// A duration from a nanosecond count, saturating at [`Duration::MAX`].
pub(crate) fn from_nanos(nanos: u128) -> Duration {
    const NANOS_PER_SEC: u128 = 1_000_000_000;
    match u64::try_from(nanos / NANOS_PER_SEC) {
        // The remainder is below 10^9, so it fits a u32.
        Ok(secs) => Duration::new(secs, (nanos % NANOS_PER_SEC) as u32),
        Err(_) => Duration::MAX,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn exponential_default_table() {
        let mut b = ExponentialBackoff::default();
        let got: Vec<Duration> = (1..=7).map(|f| b.compute(f)).collect();
        let want: Vec<Duration> = [16, 32, 64, 128, 256, 512, 512].map(ms).to_vec();
        assert_eq!(got, want);
    }

    #[test]
    fn exponential_constructor_order_is_cap_then_base() {
        let mut b = ExponentialBackoff::new(ms(100), ms(1));
        assert_eq!(b.compute(1), ms(2));
        assert_eq!(b.compute(6), ms(64));
        assert_eq!(b.compute(7), ms(100));
    }

    #[test]
    fn exponential_saturates_for_large_failures() {
        let mut b = ExponentialBackoff::default();
        for f in [8, 31, 32, 33, 63, 64, 100, 127, 128, 1000, u32::MAX] {
            assert_eq!(b.compute(f), ms(512), "f = {f}");
        }
        // A cap above what u32 multipliers reach is still honoured exactly.
        let hour = Duration::from_secs(3600);
        let mut tiny = ExponentialBackoff::new(hour, Duration::from_nanos(1));
        assert_eq!(tiny.compute(40), Duration::from_nanos(1 << 40));
        assert_eq!(tiny.compute(60), hour);
        assert_eq!(tiny.compute(u32::MAX), hour);
        let mut huge = ExponentialBackoff::new(Duration::MAX, Duration::MAX);
        assert_eq!(huge.compute(1), Duration::MAX);
        assert_eq!(exponential(ms(512), Duration::ZERO, 5), Duration::ZERO);
    }

    #[test]
    fn no_and_constant_backoff() {
        let mut n = NoBackoff;
        assert_eq!(n.compute(1), Duration::ZERO);
        assert_eq!(n.compute(u32::MAX), Duration::ZERO);
        let mut c = ConstantBackoff::new(ms(250));
        assert_eq!(c.compute(1), ms(250));
        assert_eq!(c.compute(99), ms(250));
        c.reset();
        assert_eq!(c.compute(1), ms(250));
        assert_eq!(ConstantBackoff::default().compute(3), ms(8));
    }

    #[test]
    fn default_backoff_is_equal_jitter_with_defaults() {
        let b = default_backoff();
        assert_eq!((b.cap(), b.base()), (ms(512), ms(8)));
        let mut b = b.with_random(FixedRandom(0.0));
        assert_eq!(b.compute(1), ms(8));
        assert_eq!(b.compute(7), ms(256));
    }

    #[test]
    fn boxed_backoffs_clone_and_delegate() {
        let boxed: Box<dyn Backoff> = Box::new(ExponentialBackoff::default());
        let mut copy = boxed.clone();
        assert_eq!(copy.compute(2), ms(32));
        let mut rebox = boxed.clone_box();
        rebox.reset();
        assert_eq!(Backoff::compute(&mut rebox, 3), ms(64));
    }

    #[test]
    fn from_nanos_saturates() {
        assert_eq!(from_nanos(1_500_000_000), Duration::new(1, 500_000_000));
        assert_eq!(from_nanos(u128::MAX), Duration::MAX);
        assert_eq!(from_nanos(Duration::MAX.as_nanos()), Duration::MAX);
    }
}
