//! The jittered strategies: randomised waits, so that many clients failing
//! together do not retry together.

use std::time::Duration;

use super::random::{FastRandom, RandomSource, uniform};
use super::{Backoff, DEFAULT_BASE, DEFAULT_CAP, exponential};

/// Defines a jittered strategy: its fields, constructor, `Default`,
/// `with_random` and accessors, which the three share.
macro_rules! jittered {
    ($(#[$doc:meta])* $name:ident { $($field:ident: $ty:ty = $init:expr),* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub struct $name {
            cap: Duration,
            base: Duration,
            random: Box<dyn RandomSource>,
            $($field: $ty,)*
        }

        impl $name {
            /// A strategy with the given bounds, drawing from a [`FastRandom`].
            /// Note the order: cap first, as in valkey-py.
            pub fn new(cap: Duration, base: Duration) -> $name {
                $name {
                    cap,
                    base,
                    random: Box::new(FastRandom::new()),
                    $($field: $init,)*
                }
            }

            /// Replaces the random source, e.g. with a
            /// [`FixedRandom`](super::FixedRandom) for exact tests.
            pub fn with_random(mut self, source: impl RandomSource + 'static) -> $name {
                self.random = Box::new(source);
                self
            }

            /// The upper bound of a computed wait.
            pub fn cap(&self) -> Duration {
                self.cap
            }

            /// The base the waits grow from.
            pub fn base(&self) -> Duration {
                self.base
            }
        }

        /// `cap` = 512 ms, `base` = 8 ms.
        impl Default for $name {
            fn default() -> Self {
                $name::new(DEFAULT_CAP, DEFAULT_BASE)
            }
        }
    };
}

jittered! {
    /// Uniform in `[0, min(cap, base * 2^failures)]`.
    FullJitterBackoff {}
}

impl Backoff for FullJitterBackoff {
    fn compute(&mut self, failures: u32) -> Duration {
        let high = exponential(self.cap, self.base, failures);
        uniform(Duration::ZERO, high, self.random.next_f64())
    }

    fn reset(&mut self) {}

    fn clone_box(&self) -> Box<dyn Backoff> {
        Box::new(self.clone())
    }
}

jittered! {
    /// Half of `min(cap, base * 2^failures)`, plus uniform in `[0, that half]`:
    /// never shorter than half the exponential wait. The default strategy.
    EqualJitterBackoff {}
}

impl Backoff for EqualJitterBackoff {
    fn compute(&mut self, failures: u32) -> Duration {
        let half = exponential(self.cap, self.base, failures) / 2;
        half + uniform(Duration::ZERO, half, self.random.next_f64())
    }

    fn reset(&mut self) {}

    fn clone_box(&self) -> Box<dyn Backoff> {
        Box::new(self.clone())
    }
}

jittered! {
    /// Each wait drawn uniformly in `[base, max(base, 3 * previous)]`, capped;
    /// ignores the failure count. The first wait after a reset is `base`.
    DecorrelatedJitterBackoff { previous: Duration = Duration::ZERO }
}

impl Backoff for DecorrelatedJitterBackoff {
    fn compute(&mut self, _failures: u32) -> Duration {
        let high = self.base.max(self.previous.saturating_mul(3));
        let wait = uniform(self.base, high, self.random.next_f64()).min(self.cap);
        self.previous = wait;
        wait
    }

    fn reset(&mut self) {
        self.previous = Duration::ZERO;
    }

    fn clone_box(&self) -> Box<dyn Backoff> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{FixedRandom, ScriptedRandom};
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn table(b: &mut dyn Backoff) -> Vec<Duration> {
        (1..=7).map(|f| b.compute(f)).collect()
    }

    fn ms_table(v: [u64; 7]) -> Vec<Duration> {
        v.map(ms).to_vec()
    }

    #[test]
    fn full_jitter_bounds() {
        let lo = FullJitterBackoff::default().with_random(FixedRandom(0.0));
        let hi = FullJitterBackoff::default().with_random(FixedRandom(1.0));
        let mid = FullJitterBackoff::default().with_random(FixedRandom(0.5));
        assert_eq!(table(&mut lo.clone()), vec![Duration::ZERO; 7]);
        assert_eq!(
            table(&mut hi.clone()),
            ms_table([16, 32, 64, 128, 256, 512, 512])
        );
        assert_eq!(
            table(&mut mid.clone()),
            ms_table([8, 16, 32, 64, 128, 256, 256])
        );
    }

    #[test]
    fn equal_jitter_bounds() {
        let lo = EqualJitterBackoff::default().with_random(FixedRandom(0.0));
        let hi = EqualJitterBackoff::default().with_random(FixedRandom(1.0));
        let mid = EqualJitterBackoff::default().with_random(FixedRandom(0.5));
        assert_eq!(
            table(&mut lo.clone()),
            ms_table([8, 16, 32, 64, 128, 256, 256])
        );
        assert_eq!(
            table(&mut hi.clone()),
            ms_table([16, 32, 64, 128, 256, 512, 512])
        );
        assert_eq!(
            table(&mut mid.clone()),
            ms_table([12, 24, 48, 96, 192, 384, 384])
        );
    }

    #[test]
    fn jitter_with_default_random_stays_in_bounds() {
        let mut full = FullJitterBackoff::default();
        let mut equal = EqualJitterBackoff::default();
        let mut decorrelated = DecorrelatedJitterBackoff::default();
        for f in 1..=12 {
            let e = exponential(ms(512), ms(8), f);
            for _ in 0..100 {
                assert!(full.compute(f) <= e);
                let w = equal.compute(f);
                assert!(e / 2 <= w && w <= e);
                let d = decorrelated.compute(f);
                assert!(ms(8) <= d && d <= ms(512));
            }
        }
    }

    #[test]
    fn jitter_saturates_for_large_failures() {
        let mut full = FullJitterBackoff::default().with_random(FixedRandom(1.0));
        let mut equal = EqualJitterBackoff::default().with_random(FixedRandom(1.0));
        assert_eq!(full.compute(u32::MAX), ms(512));
        assert_eq!(equal.compute(u32::MAX), ms(512));
    }

    #[test]
    fn decorrelated_scripted_sequence() {
        // prev = 0: [8, 8] -> 8; prev = 8: [8, 24] at 0.5 -> 16;
        // prev = 16: [8, 48] at 1 -> 48; prev = 48: [8, 144] at 0 -> 8;
        // prev = 8: [8, 24] at 1 -> 24; prev = 24: [8, 72] at 1 -> 72;
        // prev = 72: [8, 216] at 1 -> 216; prev = 216: [8, 648] at 1 -> 648, capped 512.
        let script = ScriptedRandom::new([0.3, 0.5, 1.0, 0.0, 1.0, 1.0, 1.0, 1.0]);
        let mut b = DecorrelatedJitterBackoff::default().with_random(script);
        let got: Vec<Duration> = (1..=8).map(|f| b.compute(f)).collect();
        let want: Vec<Duration> = [8, 16, 48, 8, 24, 72, 216, 512].map(ms).to_vec();
        assert_eq!(got, want);
        // Capped values are stored as prev: [8, 1536] at 0.5 -> 772, capped 512.
        let mut b = b.with_random(FixedRandom(0.5));
        assert_eq!(b.compute(9), ms(512));
    }

    #[test]
    fn decorrelated_ignores_failures_argument() {
        let mut a = DecorrelatedJitterBackoff::default().with_random(FixedRandom(1.0));
        let mut b = DecorrelatedJitterBackoff::default().with_random(FixedRandom(1.0));
        let xs: Vec<Duration> = (1..=5).map(|f| a.compute(f)).collect();
        let ys: Vec<Duration> = (1..=5).map(|_| b.compute(99)).collect();
        assert_eq!(xs, ys);
        assert_eq!(xs, ms_table([8, 24, 72, 216, 512, 512, 512])[..5]);
    }

    #[test]
    fn decorrelated_reset_starts_over_at_base() {
        let mut b = DecorrelatedJitterBackoff::default().with_random(FixedRandom(1.0));
        assert_eq!(b.compute(1), ms(8));
        assert_eq!(b.compute(2), ms(24));
        assert_eq!(b.compute(3), ms(72));
        b.reset();
        // With prev = 0 the range is [base, base]: exactly base, whatever the draw.
        assert_eq!(b.compute(4), ms(8));
        assert_eq!(b.compute(5), ms(24));
        for r in [0.0, 0.3, 1.0] {
            let mut b =
                DecorrelatedJitterBackoff::new(ms(1000), ms(10)).with_random(FixedRandom(r));
            b.compute(1);
            b.compute(2);
            b.reset();
            assert_eq!(b.compute(3), ms(10), "r = {r}");
        }
    }

    #[test]
    fn decorrelated_clone_keeps_state_reset_is_independent() {
        let mut b = DecorrelatedJitterBackoff::default().with_random(FixedRandom(1.0));
        b.compute(1);
        let mut c = b.clone_box();
        b.reset();
        assert_eq!(c.compute(2), ms(24));
        assert_eq!(b.compute(2), ms(8));
    }

    #[test]
    fn constructor_order_is_cap_then_base() {
        let b = FullJitterBackoff::new(ms(100), ms(2));
        assert_eq!((b.cap(), b.base()), (ms(100), ms(2)));
        let mut e = EqualJitterBackoff::new(ms(100), ms(2)).with_random(FixedRandom(1.0));
        assert_eq!(e.compute(1), ms(4));
        assert_eq!(e.compute(10), ms(100));
        let d = DecorrelatedJitterBackoff::default();
        assert_eq!((d.cap(), d.base()), (ms(512), ms(8)));
    }
}
