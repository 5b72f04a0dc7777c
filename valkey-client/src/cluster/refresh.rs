//! Topology refreshes, single-flight and rate-limited (retry-semantics
//! section 4): one refresh runs at a time, and every trigger that arrives
//! while it runs waits for that one; a new one starts no sooner than the
//! minimum interval (with up to a quarter of jitter) after the last one
//! started. So a failover seen by many tasks at once costs one refresh, not
//! one per request, and many clients do not refresh in lockstep. What a
//! refresh does is the caller's (reading `CLUSTER SHARDS` from a few nodes);
//! this only decides when it runs.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

/// One refresh, as a future the gate spawns.
pub(crate) type RefreshFn = Box<dyn Fn() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// Coordinates refreshes; cheap to clone.
#[derive(Clone)]
pub(crate) struct RefreshGate {
    inner: Arc<Inner>,
}

struct Inner {
    refresh: RefreshFn,
    min_interval: Duration,
    state: Mutex<State>,
    /// The generation of the last refresh completed.
    done: watch::Sender<u64>,
}

#[derive(Default)]
struct State {
    /// Generations started (or waiting out the rate limit) so far; the
    /// running one is `started`.
    started: u64,
    running: bool,
    last_start: Option<Instant>,
}

impl RefreshGate {
    /// A gate that runs `refresh` when asked, at most one at a time and no
    /// more often than every `min_interval`.
    pub(crate) fn new(min_interval: Duration, refresh: RefreshFn) -> RefreshGate {
        RefreshGate {
            inner: Arc::new(Inner {
                refresh,
                min_interval,
                state: Mutex::new(State::default()),
                done: watch::channel(0).0,
            }),
        }
    }

    /// Asks for a refresh: joins the one running, or starts one (after the
    /// rate limit). Returns the generation that answers the request, for
    /// [`RefreshGate::wait`].
    pub(crate) fn trigger(&self) -> u64 {
        let mut state = self.inner.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.running {
            return state.started;
        }
        // The generation is taken now, so that triggers during the
        // rate-limit wait join this refresh too.
        state.running = true;
        state.started += 1;
        let generation = state.started;
        let wait = state.last_start.map_or(Duration::ZERO, |last| {
            (last + jittered(self.inner.min_interval)).saturating_duration_since(Instant::now())
        });
        drop(state);
        tokio::spawn(run(self.inner.clone(), generation, wait));
        generation
    }

    /// Waits until the refresh of `generation` (or a later one) completed.
    pub(crate) async fn wait(&self, generation: u64) {
        let mut done = self.inner.done.subscribe();
        // The sender lives as long as the gate: the wait cannot fail.
        let _ = done.wait_for(|&g| g >= generation).await;
    }

    /// Asks for a refresh and waits for it.
    pub(crate) async fn refresh(&self) {
        let generation = self.trigger();
        self.wait(generation).await;
    }
}

/// `interval` plus up to a quarter of it, at random.
fn jittered(interval: Duration) -> Duration {
    interval + interval.mul_f64(fastrand::f64() / 4.0)
}

/// Runs refresh `generation` after `wait`, then marks it done.
async fn run(inner: Arc<Inner>, generation: u64, wait: Duration) {
    // Done however the run ends (a panic, the runtime shutting down): no
    // waiter may hang on a refresh that will never finish.
    let _done = Done {
        inner: &inner,
        generation,
    };
    if !wait.is_zero() {
        tokio::time::sleep(wait).await;
    }
    inner
        .state
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .last_start = Some(Instant::now());
    (inner.refresh)().await;
}

/// Marks a refresh done when dropped.
struct Done<'a> {
    inner: &'a Inner,
    generation: u64,
}

impl Drop for Done<'_> {
    fn drop(&mut self) {
        self.inner
            .state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .running = false;
        self.inner.done.send_replace(self.generation);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    /// A gate whose refresh takes 10 ms and counts its runs and their starts.
    fn counting_gate(
        min_interval: Duration,
    ) -> (RefreshGate, Arc<AtomicU32>, Arc<Mutex<Vec<Instant>>>) {
        let runs = Arc::new(AtomicU32::new(0));
        let starts = Arc::new(Mutex::new(Vec::new()));
        let (r, s) = (runs.clone(), starts.clone());
        let gate = RefreshGate::new(
            min_interval,
            Box::new(move || {
                let (r, s) = (r.clone(), s.clone());
                Box::pin(async move {
                    s.lock().unwrap().push(Instant::now());
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    r.fetch_add(1, Ordering::SeqCst);
                })
            }),
        );
        (gate, runs, starts)
    }

    #[tokio::test(start_paused = true)]
    async fn many_triggers_at_once_cost_one_refresh() {
        let (gate, runs, _) = counting_gate(Duration::from_millis(100));
        let waiters: Vec<_> = (0..100)
            .map(|_| {
                let gate = gate.clone();
                tokio::spawn(async move { gate.refresh().await })
            })
            .collect();
        for w in waiters {
            w.await.unwrap();
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_trigger_while_running_waits_for_that_refresh() {
        let (gate, runs, _) = counting_gate(Duration::from_millis(100));
        let first = gate.trigger();
        tokio::time::sleep(Duration::from_millis(5)).await;
        // Mid-refresh: joins it.
        assert_eq!(gate.trigger(), first);
        gate.wait(first).await;
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn triggers_during_the_rate_limit_wait_join_the_pending_refresh() {
        let (gate, runs, _) = counting_gate(Duration::from_millis(100));
        gate.refresh().await;
        let pending = gate.trigger();
        tokio::time::sleep(Duration::from_millis(20)).await;
        let joined = gate.trigger();
        assert_eq!(joined, pending);
        gate.wait(joined).await;
        assert_eq!(
            runs.load(Ordering::SeqCst),
            2,
            "the joiner waited for the pending run"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_refresh_that_panics_still_releases_its_waiters() {
        let calls = Arc::new(AtomicU32::new(0));
        let c = calls.clone();
        let gate = RefreshGate::new(
            Duration::ZERO,
            Box::new(move || {
                let first = c.fetch_add(1, Ordering::SeqCst) == 0;
                Box::pin(async move {
                    assert!(!first, "the first refresh fails");
                })
            }),
        );
        gate.refresh().await;
        // The gate still works afterwards.
        gate.refresh().await;
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn refreshes_are_rate_limited_but_never_dropped() {
        let interval = Duration::from_millis(100);
        let (gate, runs, starts) = counting_gate(interval);
        gate.refresh().await;
        // Right after: this one is held back to the interval, not dropped.
        gate.refresh().await;
        gate.refresh().await;
        assert_eq!(runs.load(Ordering::SeqCst), 3);
        let starts = starts.lock().unwrap();
        for pair in starts.windows(2) {
            let gap = pair[1] - pair[0];
            assert!(gap >= interval, "refreshes {gap:?} apart");
            assert!(gap <= interval + interval / 4, "refreshes {gap:?} apart");
        }
    }
}
