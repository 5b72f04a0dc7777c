//! Random sources for the jittered strategies.
//!
//! Jitter is drawn through the [`RandomSource`] trait so that tests (ours and
//! our users') can script the draws and check exact durations.

use std::time::Duration;

/// A source of uniform numbers in `[0, 1]` for jittered backoffs.
///
/// Injectable so that tests get exact, repeatable durations.
pub trait RandomSource: Send + Sync + std::fmt::Debug {
    /// The next number, in `[0, 1]`. Values outside are clamped by the caller.
    fn next_f64(&mut self) -> f64;

    /// A boxed copy, so that strategies holding a source stay cloneable.
    fn clone_box(&self) -> Box<dyn RandomSource>;
}

impl Clone for Box<dyn RandomSource> {
    fn clone(&self) -> Self {
        self.clone_box()
    }
}

/// The default source: a `fastrand` generator seeded from the thread-local one.
///
/// Cloning reseeds, so clones of one strategy (one per call of
/// [`Retry`](crate::Retry)) do not draw the same jitter in lockstep, which
/// would defeat the point of jitter.
#[derive(Debug)]
pub struct FastRandom {
    rng: fastrand::Rng,
}

impl FastRandom {
    /// A generator seeded from `fastrand`'s thread-local generator.
    pub fn new() -> FastRandom {
        FastRandom {
            rng: fastrand::Rng::with_seed(fastrand::u64(..)),
        }
    }
}

impl Default for FastRandom {
    fn default() -> Self {
        FastRandom::new()
    }
}

impl RandomSource for FastRandom {
    fn next_f64(&mut self) -> f64 {
        self.rng.f64()
    }

    fn clone_box(&self) -> Box<dyn RandomSource> {
        Box::new(FastRandom::new())
    }
}

/// A source that always returns the same number: `FixedRandom(0.0)` gives the
/// low bound of every draw, `FixedRandom(1.0)` the high bound. For tests.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FixedRandom(pub f64);

impl RandomSource for FixedRandom {
    fn next_f64(&mut self) -> f64 {
        self.0
    }

    fn clone_box(&self) -> Box<dyn RandomSource> {
        Box::new(*self)
    }
}

/// A source that returns a scripted sequence of numbers, starting over at the
/// end. Clones continue from the same position. For tests.
#[derive(Debug, Clone, PartialEq)]
pub struct ScriptedRandom {
    values: Vec<f64>,
    next: usize,
}

impl ScriptedRandom {
    /// A source returning `values` in order, cycling. An empty script returns 0.
    pub fn new(values: impl Into<Vec<f64>>) -> ScriptedRandom {
        ScriptedRandom {
            values: values.into(),
            next: 0,
        }
    }
}

impl RandomSource for ScriptedRandom {
    fn next_f64(&mut self) -> f64 {
        let Some(&value) = self.values.get(self.next) else {
            return 0.0;
        };
        self.next = (self.next + 1) % self.values.len();
        value
    }

    fn clone_box(&self) -> Box<dyn RandomSource> {
        Box::new(self.clone())
    }
}

/// `a + (b - a) * r`, with `r` clamped to `[0, 1]` (NaN counts as 0) and the
/// bounds returned exactly at `r = 0` and `r = 1`. Assumes `a <= b`.
pub(crate) fn uniform(a: Duration, b: Duration, r: f64) -> Duration {
    let span = b.saturating_sub(a);
    if r.is_nan() || r <= 0.0 {
        return a;
    }
    if r >= 1.0 {
        return a + span;
    }
    // Nanosecond arithmetic: exact for every duration below 2^53 ns (104 days).
    let offset = (span.as_nanos() as f64 * r) as u128;
    a + super::from_nanos(offset).min(span)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn uniform_bounds_and_midpoint() {
        assert_eq!(uniform(MS(8), MS(16), 0.0), MS(8));
        assert_eq!(uniform(MS(8), MS(16), 1.0), MS(16));
        assert_eq!(uniform(MS(8), MS(16), 0.5), MS(12));
        assert_eq!(uniform(MS(8), MS(16), 0.25), MS(10));
        // Out-of-range draws are clamped.
        assert_eq!(uniform(MS(8), MS(16), -3.0), MS(8));
        assert_eq!(uniform(MS(8), MS(16), 7.0), MS(16));
        assert_eq!(uniform(MS(8), MS(16), f64::NAN), MS(8));
        assert_eq!(uniform(MS(8), MS(8), 0.5), MS(8));
        // Huge spans do not panic.
        assert_eq!(uniform(Duration::ZERO, Duration::MAX, 1.0), Duration::MAX);
        assert!(uniform(Duration::ZERO, Duration::MAX, 0.5) <= Duration::MAX);
    }

    #[test]
    fn scripted_cycles_and_clones_keep_position() {
        let mut s = ScriptedRandom::new([0.1, 0.2]);
        assert_eq!(s.next_f64(), 0.1);
        let mut c = s.clone_box();
        assert_eq!(s.next_f64(), 0.2);
        assert_eq!(s.next_f64(), 0.1);
        assert_eq!(c.next_f64(), 0.2);
        assert_eq!(ScriptedRandom::new(vec![]).next_f64(), 0.0);
    }

    #[test]
    fn fast_random_in_range_and_clones_diverge() {
        let mut a = FastRandom::new();
        for _ in 0..1000 {
            let r = a.next_f64();
            assert!((0.0..=1.0).contains(&r));
        }
        let mut b = a.clone_box();
        let xs: Vec<f64> = (0..8).map(|_| a.next_f64()).collect();
        let ys: Vec<f64> = (0..8).map(|_| b.next_f64()).collect();
        assert_ne!(xs, ys, "clones must be reseeded");
    }
}
