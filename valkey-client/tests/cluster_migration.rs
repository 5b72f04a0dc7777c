//! `ValkeyCluster` while slots move under load: legacy resharding (ASK
//! during the move, MOVED after), Valkey 9's atomic slot migration (MOVED
//! for whole ranges at once), and pipelines over every slot while slots
//! move. No error reaches a caller, every value reads back, no INCR runs
//! twice, and the topology is read far fewer times than slots moved.

use std::collections::HashMap;
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use valkey_client::Commands;
use valkey_client::cluster::key_slot;
use valkey_client::{Event, Pipeline, ValkeyCluster};
use valkey_testkit::{Cluster, ClusterConfig};

mod common;
use common::cluster::counting;

/// A hash tag for each slot of `slots` (found by search).
fn tags_for(slots: RangeInclusive<u16>) -> Vec<String> {
    let mut found: HashMap<u16, String> = HashMap::new();
    let want = slots.clone().count();
    let mut i = 0u64;
    while found.len() < want {
        let tag = format!("t{i}");
        let slot = key_slot(tag.as_bytes());
        if slots.contains(&slot) {
            found.entry(slot).or_insert(tag);
        }
        i += 1;
    }
    let mut tags: Vec<(u16, String)> = found.into_iter().collect();
    tags.sort();
    tags.into_iter().map(|(_, tag)| tag).collect()
}

/// A client and the number of topology reads it made.
async fn client(cluster: &Cluster) -> (ValkeyCluster, Arc<AtomicUsize>) {
    let (builder, reads) = counting(cluster, |event| {
        matches!(event, Event::TopologyRefreshed { .. })
    });
    let rc = builder
        .response_timeout(Some(Duration::from_secs(5)))
        .build()
        .await
        .unwrap();
    (rc, reads)
}

/// 16 tasks writing and reading back their own keys (one per tag) until
/// `stop`; any error fails the test. Returns each key's last value.
fn load(
    rc: &ValkeyCluster,
    tags: &Arc<Vec<String>>,
    stop: &Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<HashMap<String, String>>> {
    (0..16)
        .map(|task| {
            let rc = rc.clone();
            let tags = tags.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut last = HashMap::new();
                let mut n = 0usize;
                while !stop.load(Ordering::Relaxed) && n < 200_000 {
                    let tag = &tags[(task * 7919 + n * 31) % tags.len()];
                    let key = format!("{{{tag}}}:{task}");
                    let value = format!("{task}-{n}");
                    rc.set(&key, &value)
                        .await
                        .unwrap_or_else(|err| panic!("SET {key}: {err}"));
                    let read: Option<String> = rc
                        .get(&key)
                        .await
                        .unwrap_or_else(|err| panic!("GET {key}: {err}"));
                    assert_eq!(read.as_deref(), Some(value.as_str()), "{key}");
                    last.insert(key, value);
                    n += 1;
                }
                last
            })
        })
        .collect()
}

async fn check_all(
    rc: &ValkeyCluster,
    tasks: Vec<tokio::task::JoinHandle<HashMap<String, String>>>,
) {
    let mut checked = 0;
    for task in tasks {
        for (key, value) in task.await.unwrap() {
            let read: Option<String> = rc.get(&key).await.unwrap();
            assert_eq!(read, Some(value), "{key}");
            checked += 1;
        }
    }
    assert!(checked > 500, "only {checked} keys written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_resharding_of_1024_slots_under_load() {
    let cluster = Cluster::start(ClusterConfig::default()).await.unwrap();
    let (rc, reads) = client(&cluster).await;
    let slots = 0..=1023u16;
    let tags = Arc::new(tags_for(slots.clone()));
    let stop = Arc::new(AtomicBool::new(false));
    let tasks = load(&rc, &tags, &stop);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = reads.load(Ordering::Relaxed);
    let moved = cluster
        .migrate_slots_legacy(slots, 0, 1, Duration::from_secs(60))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    check_all(&rc, tasks).await;
    let refreshes = reads.load(Ordering::Relaxed) - before;
    eprintln!("legacy: {moved} keys moved, {refreshes} topology reads for 1024 slots");
    assert!(moved > 0);
    assert!(refreshes < 1024, "{refreshes} topology reads");
    assert_eq!(
        rc.slot_owner(0).unwrap(),
        format!("127.0.0.1:{}", cluster.node(1).port())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn atomic_migration_of_5000_slots_under_load() {
    let cluster = Cluster::start(ClusterConfig::default()).await.unwrap();
    let (rc, reads) = client(&cluster).await;
    // Most of primary 0's slots (0..=5460) move to primary 2.
    let slots = 0..=4999u16;
    let tags = Arc::new(tags_for(slots.clone()));
    let stop = Arc::new(AtomicBool::new(false));
    let tasks = load(&rc, &tags, &stop);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = reads.load(Ordering::Relaxed);
    cluster
        .migrate_slots_atomic(slots, 0, 2, Duration::from_secs(60))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    check_all(&rc, tasks).await;
    let refreshes = reads.load(Ordering::Relaxed) - before;
    eprintln!("atomic: {refreshes} topology reads for 5000 slots");
    assert!(refreshes <= 2, "{refreshes} topology reads");
    assert_eq!(
        rc.slot_owner(4999).unwrap(),
        format!("127.0.0.1:{}", cluster.node(2).port())
    );
}

/// Pipelines of 10,000 INCRs over every slot, run back to back while 10
/// slots move: every result in order, and each counter ends at the number
/// of pipelines (no INCR lost, none run twice).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelines_over_every_slot_while_10_slots_move() {
    let cluster = Cluster::start(ClusterConfig::default()).await.unwrap();
    let (rc, _) = client(&cluster).await;
    let keys: Vec<String> = (0..10_000).map(|i| format!("counter:{i}")).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let runner = {
        let rc = rc.clone();
        let keys = keys.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut runs = 0i64;
            while !stop.load(Ordering::Relaxed) && runs < 200 {
                let mut pipe = Pipeline::new();
                for key in &keys {
                    pipe.cmd("INCR").arg(key);
                }
                let results = rc.pipeline(&mut pipe).await.unwrap();
                runs += 1;
                assert_eq!(results.len(), keys.len());
                for (key, result) in keys.iter().zip(results) {
                    let value = result.unwrap_or_else(|err| panic!("INCR {key}: {err}"));
                    assert_eq!(value.as_int(), Some(runs), "{key}");
                }
            }
            runs
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    // 10 slots that hold counters, moved one by one from primary 0 to 1.
    let mut slots: Vec<u16> = keys
        .iter()
        .map(|k| key_slot(k.as_bytes()))
        .filter(|&s| s <= 5460)
        .collect();
    slots.sort_unstable();
    slots.dedup();
    for &slot in slots.iter().step_by(slots.len() / 10).take(10) {
        cluster
            .migrate_slots_legacy(slot..=slot, 0, 1, Duration::from_secs(20))
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);
    let runs = runner.await.unwrap();
    assert!(runs >= 2, "only {runs} pipelines ran");
    let mut mget = valkey_client::Cmd::new("MGET");
    for key in &keys {
        mget.push_arg(key);
    }
    let values: Vec<Option<i64>> = rc.request(&mget).await.unwrap();
    for (key, value) in keys.iter().zip(values) {
        assert_eq!(value, Some(runs), "{key}");
    }
}
