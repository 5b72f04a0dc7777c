//! Soak: mixed traffic from 32 tasks through the test kit's fault proxy,
//! which injects a random fault every 0.3 to 1.5 s (connections cut before
//! a request, after it or mid-reply, black holes, latency spikes, refused
//! connections, resets). Afterwards the open sockets, the live tasks and
//! the allocated bytes must be back to where they were before the traffic
//! (no leak), and no call may have waited longer than its deadline + 50 ms.
//!
//! `SOAK_SECS` sets the length: 15 s by default (run by `scripts/test.sh`),
//! 300 s from `scripts/soak.sh`, whose last results are in
//! `docs/reliability.md`.

use std::alloc::System;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};
use valkey_client::Commands;
use valkey_client::{Cmd, ErrorKind, ExponentialBackoff, Pipeline, Retry, Valkey};
use valkey_testkit::{FaultProxy, Server, ServerConfig};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const DEADLINE: Duration = Duration::from_secs(2);

/// Bytes allocated and not freed (stats_alloc counts a reallocation's
/// growth or shrinking in these two already).
fn allocated_now() -> i64 {
    let stats = GLOBAL.stats();
    stats.bytes_allocated as i64 - stats.bytes_deallocated as i64
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

fn alive_tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

/// One random fault, then back to normal.
async fn random_fault(proxy: &FaultProxy, rng: &mut fastrand::Rng) -> &'static str {
    let commands = ["SET", "GET", "INCR", "HSET"];
    let command = commands[rng.usize(..commands.len())];
    match rng.u8(0..7) {
        0 => {
            proxy.cut_before_request(command);
            "cut before"
        }
        1 => {
            proxy.cut_after_request(command);
            "cut after"
        }
        2 => {
            proxy.cut_mid_reply(command);
            "cut mid-reply"
        }
        3 => {
            proxy.black_hole(true);
            tokio::time::sleep(Duration::from_millis(rng.u64(100..700))).await;
            proxy.black_hole(false);
            "black hole"
        }
        4 => {
            proxy.set_latency(Duration::from_millis(rng.u64(50..500)));
            tokio::time::sleep(Duration::from_millis(rng.u64(100..600))).await;
            proxy.set_latency(Duration::ZERO);
            "latency"
        }
        5 => {
            proxy.refuse_connections(true);
            proxy.reset_all();
            tokio::time::sleep(Duration::from_millis(rng.u64(50..400))).await;
            proxy.refuse_connections(false);
            "refused"
        }
        _ => {
            proxy.reset_all();
            "reset"
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_under_random_faults_leaks_nothing() {
    let secs: u64 = std::env::var("SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(15);
    let server = Server::start(ServerConfig::new()).await.unwrap();
    let proxy = FaultProxy::start(server.port()).await.unwrap();
    let client = Valkey::builder()
        .host("127.0.0.1")
        .port(proxy.port())
        .retry(Retry::new(ExponentialBackoff::default(), 4))
        .retry_on_error([ErrorKind::BusyLoading])
        .response_timeout(Some(Duration::from_millis(300)))
        .request_timeout(Some(DEADLINE))
        .build()
        .await
        .unwrap();
    // A first round of traffic and faults grows the runtime's and the
    // client's pools and buffers to their working size; the baseline is
    // taken after it, and the long round must end where it began.
    let warm = (secs / 3).clamp(5, 60);
    let warm_round = storm(&client, &proxy, warm, 0x57a7).await;
    settle(&client, &proxy).await;
    let (fds, tasks, bytes) = (open_fds(), alive_tasks(), allocated_now());
    let round = storm(&client, &proxy, secs, 0x50a4).await;
    settle(&client, &proxy).await;
    let (fds_after, tasks_after, bytes_after) = (open_fds(), alive_tasks(), allocated_now());
    println!(
        "soak: warm-up {warm_round}; then {round}; \
         open fds {fds} -> {fds_after}, live tasks {tasks} -> {tasks_after}, \
         allocated bytes {bytes} -> {bytes_after}"
    );
    for slowest in [warm_round.slowest, round.slowest] {
        assert!(
            slowest <= DEADLINE + Duration::from_millis(50),
            "a call took {slowest:?}"
        );
    }
    assert!(fds_after <= fds + 2, "open fds {fds} -> {fds_after}");
    assert!(
        tasks_after <= tasks + 2,
        "live tasks {tasks} -> {tasks_after}"
    );
    assert!(
        bytes_after <= bytes + 1024 * 1024,
        "allocated bytes {bytes} -> {bytes_after}"
    );
    drop(client);
}

/// What one round of traffic under faults did.
struct Round {
    secs: u64,
    faults: u64,
    calls: u64,
    failed: u64,
    slowest: Duration,
}

impl std::fmt::Display for Round {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} s, {} faults, {} calls, {} failed, slowest call {:?}",
            self.secs, self.faults, self.calls, self.failed, self.slowest
        )
    }
}

/// 32 tasks of mixed traffic for `secs` while the proxy injects random
/// faults.
async fn storm(client: &Valkey, proxy: &FaultProxy, secs: u64, seed: u64) -> Round {
    let stop = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let slowest_ms = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..32u64)
        .map(|task| {
            let (client, stop) = (client.clone(), stop.clone());
            let (calls, errors, slowest_ms) = (calls.clone(), errors.clone(), slowest_ms.clone());
            tokio::spawn(async move {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) && n < 10_000_000 {
                    let key = format!("soak:{task}:{}", n % 100);
                    let begun = Instant::now();
                    let ok = match n % 5 {
                        0 => client.set(&key, n).await.is_ok(),
                        1 => client.get::<Option<String>>(&key).await.is_ok(),
                        2 => client.incr(format!("soak:ctr:{task}")).await.is_ok(),
                        3 => client
                            .request::<i64>(
                                &Cmd::new("HSET")
                                    .arg(format!("soak:h:{task}"))
                                    .arg(n % 10)
                                    .arg(n),
                            )
                            .await
                            .is_ok(),
                        _ => {
                            let mut pipe = Pipeline::new();
                            pipe.cmd("SET").arg(&key).arg(n).cmd("GET").arg(&key);
                            client.pipeline(&mut pipe).await.is_ok()
                        }
                    };
                    slowest_ms.fetch_max(begun.elapsed().as_millis() as u64, Ordering::Relaxed);
                    calls.fetch_add(1, Ordering::Relaxed);
                    if !ok {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                    n += 1;
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            })
        })
        .collect();
    let started = Instant::now();
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut faults = 0u64;
    while started.elapsed() < Duration::from_secs(secs) {
        tokio::time::sleep(Duration::from_millis(rng.u64(300..1500))).await;
        random_fault(proxy, &mut rng).await;
        faults += 1;
    }
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.await.unwrap();
    }
    Round {
        secs,
        faults,
        calls: calls.load(Ordering::Relaxed),
        failed: errors.load(Ordering::Relaxed),
        slowest: Duration::from_millis(slowest_ms.load(Ordering::Relaxed)),
    }
}

/// Heals the proxy, checks the client serves again, and lets retired
/// connections finish and close.
async fn settle(client: &Valkey, proxy: &FaultProxy) {
    proxy.heal();
    let mut recovered = false;
    for _ in 0..50 {
        if client.set("after", 1).await.is_ok() {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recovered, "the client did not recover after the faults");
    tokio::time::sleep(Duration::from_secs(2)).await;
}
