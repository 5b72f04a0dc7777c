//! The cluster demonstration: a primary killed under load, and the client's
//! recovery as it happens.
//!
//! Starts a throwaway cluster of 3 primaries with 1 replica each through
//! `valkey-testkit` (Valkey 9.1.2, installed from PyPI into a cache on first
//! use), runs 16 tasks of SET/GET over keys in every slot, kills the
//! primary of slot 0 with SIGKILL, and prints what the client does (node
//! dropped, topology read, redirections) and what the callers see, every
//! 100 ms, until the cluster has promoted the replica and the client routes
//! to it. It ends with how long the dead shard was unavailable to callers,
//! measured from the moment the surviving nodes reported the promotion.
//!
//! Between the primary's failure being detected (cluster-node-timeout) and
//! the promotion, every node answers CLUSTERDOWN for every slot (the
//! server's `cluster-require-full-coverage yes`): the healthy shards' calls
//! slow down but do not fail, as the client runs them again after each
//! topology read; the window lines count those retries.
//!
//! ```text
//! cargo run --example cluster_demo
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use valkey_client::Commands;
use valkey_client::cluster::key_slot;
use valkey_client::{ErrorKind, Event, ValkeyCluster};
use valkey_testkit::{Cluster, ClusterConfig};

/// Calls that succeeded and failed, on the dead shard and elsewhere.
#[derive(Default)]
struct Counts {
    ok: AtomicU64,
    failed_dead_shard: AtomicU64,
    failed_elsewhere: AtomicU64,
    /// Calls the client ran again after the cluster answered CLUSTERDOWN
    /// (the whole cluster refuses commands between a primary's failure
    /// and its replica's promotion, unless cluster-require-full-coverage
    /// is off).
    retried_cluster_down: AtomicU64,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("starting a cluster of 3 primaries with 1 replica each (cluster-node-timeout 2 s)");
    let mut cluster = Cluster::start(ClusterConfig::default()).await?;
    let (host, port) = cluster.seed_addrs()[0].clone();
    let started = Instant::now();
    let counts = Arc::new(Counts::default());
    let seen = counts.clone();
    let rc = ValkeyCluster::builder()
        .seed(host, port)
        .response_timeout(Some(Duration::from_millis(500)))
        .request_timeout(Some(Duration::from_secs(2)))
        .on_event(move |event| {
            if let Event::Retry { error, .. } = event
                && error.kind() == ErrorKind::ClusterDown
            {
                seen.retried_cluster_down.fetch_add(1, Ordering::Relaxed);
            }
            print_event(started, event)
        })
        .build()
        .await?;
    println!("{rc:?}\n");

    let dead = cluster.primaries()[0].port();
    let stop = Arc::new(AtomicBool::new(false));
    // Task t works on 200 keys of shard t % 3: the tasks of the healthy
    // shards show that one shard's trouble holds up nobody else.
    let map = cluster.initial_slot_map().clone();
    let owner = move |key: &str| {
        let slot = key_slot(key.as_bytes());
        map.iter()
            .find(|r| (r.start..=r.end).contains(&slot))
            .map(|r| r.primary)
    };
    let primaries: Vec<u16> = cluster.primaries().iter().map(|p| p.port()).collect();
    let tasks: Vec<_> = (0..16)
        .map(|task| {
            let (rc, counts, stop) = (rc.clone(), counts.clone(), stop.clone());
            let shard = primaries[task % 3];
            let keys: Vec<String> = (0..)
                .map(|i| format!("demo:{task}:{i}"))
                .filter(|k| owner(k) == Some(shard))
                .take(200)
                .collect();
            tokio::spawn(async move {
                for n in 0..1_000_000u64 {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let key = &keys[n as usize % keys.len()];
                    let result = match rc.set(key, n).await {
                        Ok(()) => rc.get::<Option<u64>>(key).await.map(|_| ()),
                        Err(e) => Err(e),
                    };
                    match result {
                        Ok(()) => counts.ok.fetch_add(1, Ordering::Relaxed),
                        Err(_) if shard == dead => {
                            counts.failed_dead_shard.fetch_add(1, Ordering::Relaxed)
                        }
                        Err(_) => counts.failed_elsewhere.fetch_add(1, Ordering::Relaxed),
                    };
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            })
        })
        .collect();

    let report = {
        let counts = counts.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut last = (0, 0, 0, 0);
            while !stop.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(100)).await;
                let now = (
                    counts.ok.load(Ordering::Relaxed),
                    counts.failed_dead_shard.load(Ordering::Relaxed),
                    counts.failed_elsewhere.load(Ordering::Relaxed),
                    counts.retried_cluster_down.load(Ordering::Relaxed),
                );
                println!(
                    "[{:>6.3}s] last 100 ms: {:>5} ok, {:>3} failed on the dead shard, {} failed \
                     elsewhere, {} retried after CLUSTERDOWN",
                    started.elapsed().as_secs_f64(),
                    now.0 - last.0,
                    now.1 - last.1,
                    now.2 - last.2,
                    now.3 - last.3
                );
                last = now;
            }
        })
    };

    tokio::time::sleep(Duration::from_millis(500)).await;
    println!(
        "\n[{:>6.3}s] SIGKILL to the primary on port {dead} (slot 0 and 5,460 more)\n",
        started.elapsed().as_secs_f64()
    );
    let killed_at = Instant::now();
    cluster.kill_node(0);
    let failed_before = counts.failed_dead_shard.load(Ordering::Relaxed);
    let (promoted, promoted_at) = cluster
        .wait_for_failover(0, Duration::from_secs(30))
        .await?;
    println!(
        "\n[{:>6.3}s] the surviving nodes report port {} as the new primary ({:?} after the kill)\n",
        started.elapsed().as_secs_f64(),
        cluster.node(promoted).port(),
        promoted_at - killed_at
    );
    // Until the first success on the dead shard's slots after the promotion.
    let mut recovered = None;
    while promoted_at.elapsed() < Duration::from_secs(5) {
        if rc.set("{demo}:probe", 1).await.is_ok()
            && rc.slot_owner(0) == Some(format!("127.0.0.1:{}", cluster.node(promoted).port()))
        {
            recovered = Some(Instant::now());
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await?;
    }
    report.await?;

    println!();
    println!(
        "calls: {} ok; {} failed on the dead shard ({} of them before the kill), {} failed elsewhere",
        counts.ok.load(Ordering::Relaxed),
        counts.failed_dead_shard.load(Ordering::Relaxed),
        failed_before,
        counts.failed_elsewhere.load(Ordering::Relaxed)
    );
    match recovered {
        Some(at) => println!(
            "the dead shard's slots served again {:?} after the survivors reported the promotion \
             (slot 0 now at {})",
            at.saturating_duration_since(promoted_at),
            rc.slot_owner(0).unwrap_or_default()
        ),
        None => println!("the dead shard's slots were not served again within 5 s"),
    }
    Ok(())
}

fn print_event(started: Instant, event: &Event<'_>) {
    let at = started.elapsed().as_secs_f64();
    match event {
        Event::NodeDropped { addr, error } => {
            println!("[{at:>6.3}s] event: node {addr} dropped from the startup nodes ({error})")
        }
        Event::TopologyRefreshed {
            from,
            shards,
            changed,
            ..
        } => println!(
            "[{at:>6.3}s] event: topology read from {from}: {shards} shards{}",
            if *changed {
                ", slots moved"
            } else {
                ", unchanged"
            }
        ),
        Event::TopologyRefreshFailed { error } => {
            println!("[{at:>6.3}s] event: topology read failed: {error}")
        }
        Event::Redirected { slot, to, ask, .. } => println!(
            "[{at:>6.3}s] event: {} slot {slot} to {to}",
            if *ask { "ASK" } else { "MOVED" }
        ),
        _ => {}
    }
}
