//! `ValkeyCluster` under real cluster faults: valkey-py's documented
//! example (14 connection attempts to a dead node), a burst of CLUSTERDOWN
//! costing a few topology reads, a primary killed or frozen under load, a
//! manual failover under load, and every node restarted.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use valkey_client::Commands;
use valkey_client::cluster::key_slot;
use valkey_client::{
    Cmd, Error, ErrorKind, Event, ExponentialBackoff, Retry, ValkeyCluster, ValkeyClusterBuilder,
};
use valkey_testkit::{Cluster, ClusterConfig};

/// What a client's listener saw.
#[derive(Default)]
struct Seen {
    refreshes: AtomicUsize,
    /// (command, wait) of every retry.
    retries: Mutex<Vec<Duration>>,
}

fn builder(cluster: &Cluster, seen: &Arc<Seen>) -> ValkeyClusterBuilder {
    let (host, port) = cluster.seed_addrs()[0].clone();
    let seen = seen.clone();
    ValkeyCluster::builder()
        .seed(host, port)
        .on_event(move |event| match event {
            Event::TopologyRefreshed { .. } | Event::TopologyRefreshFailed { .. } => {
                seen.refreshes.fetch_add(1, Ordering::Relaxed);
            }
            Event::Retry { wait, .. } => seen.retries.lock().unwrap().push(*wait),
            _ => {}
        })
}

/// valkey-py's documented example: `retry = Retry(ExponentialBackoff(), 6)`,
/// `cluster_error_retry_attempts = 1`, the owner of `foo` down. Its port is
/// held by a listener that counts connections and closes them at once: 7
/// connection attempts, waits of 16..512 ms, the node dropped and the
/// topology read, 7 more, then the Connection error. Without replicas, so
/// no failover moves `foo` meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_example_makes_14_connection_attempts() {
    let mut cluster = Cluster::start(ClusterConfig::new(3, 0)).await.unwrap();
    let seen = Arc::new(Seen::default());
    let rc = builder(&cluster, &seen)
        .retry(Retry::new(ExponentialBackoff::default(), 6))
        .cluster_error_retry_attempts(1)
        .build()
        .await
        .unwrap();
    rc.set("foo", "bar").await.unwrap();
    let owner = cluster.slot_owner(key_slot(b"foo"));
    let index = cluster
        .primaries()
        .iter()
        .position(|p| p.port() == owner)
        .unwrap();
    cluster.kill_node(index);
    let listener = TcpListener::bind(("127.0.0.1", owner)).await.unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    let acceptor = tokio::spawn(async move {
        loop {
            if let Ok((socket, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                drop(socket);
            }
        }
    });
    // Let the client see its connection close before the command.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let refreshes_before = seen.refreshes.load(Ordering::SeqCst);
    seen.retries.lock().unwrap().clear();
    let started = Instant::now();
    let err = rc.set("foo", "bar").await.unwrap_err();
    let took = started.elapsed();
    acceptor.abort();
    assert_eq!(err.kind(), ErrorKind::Connection, "{err}");
    assert_eq!(accepted.load(Ordering::SeqCst), 14, "connection attempts");
    let ms: Vec<u128> = seen
        .retries
        .lock()
        .unwrap()
        .iter()
        .map(Duration::as_millis)
        .collect();
    // The node's retries, the cluster's retry of the command (no wait of
    // its own: the topology was read), the node's retries again.
    assert_eq!(
        ms,
        [16, 32, 64, 128, 256, 512, 0, 16, 32, 64, 128, 256, 512]
    );
    // A topology read after each cycle.
    assert_eq!(seen.refreshes.load(Ordering::SeqCst) - refreshes_before, 2);
    assert!(took >= Duration::from_millis(2016), "{took:?}");
    assert!(took < Duration::from_secs(6), "{took:?}");
}

/// 1,000 tasks hit CLUSTERDOWN at once (their slot unassigned for 150 ms):
/// all succeed, and the burst costs at most 3 topology reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clusterdown_burst_costs_a_few_topology_reads() {
    let cluster =
        Cluster::start(ClusterConfig::new(3, 0).config("cluster-require-full-coverage", "no"))
            .await
            .unwrap();
    let seen = Arc::new(Seen::default());
    let rc = builder(&cluster, &seen).build().await.unwrap();
    rc.set("{burst}", "v").await.unwrap();
    let slot = key_slot(b"burst");
    let owner = cluster.primary_index_for_slot(slot).await.unwrap();
    let owner_id = cluster.node_id(owner).await.unwrap();
    let mut admins = Vec::new();
    for node in cluster.primaries() {
        admins.push(node.connect().await.unwrap());
    }
    for admin in &mut admins {
        admin
            .request(&Cmd::new("CLUSTER").arg("DELSLOTS").arg(slot))
            .await
            .unwrap();
    }
    let before = seen.refreshes.load(Ordering::SeqCst);
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let rc = rc.clone();
            tokio::spawn(async move { rc.get::<Option<String>>("{burst}").await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(150)).await;
    for admin in &mut admins {
        admin
            .request(
                &Cmd::new("CLUSTER")
                    .arg("SETSLOT")
                    .arg(slot)
                    .arg("NODE")
                    .arg(&owner_id),
            )
            .await
            .unwrap();
    }
    for task in tasks {
        let value = task.await.unwrap().unwrap();
        assert_eq!(value.as_deref(), Some("v"));
    }
    let reads = seen.refreshes.load(Ordering::SeqCst) - before;
    assert!((1..=3).contains(&reads), "{reads} topology reads");
}

/// One write: its key, value, how long the call took, when it ended, and
/// its result.
struct Outcome {
    key: String,
    value: String,
    took: Duration,
    at: Instant,
    result: Result<(), Error>,
}

/// 16 tasks writing unique values until `stop`, at most `max` each.
fn writers(
    rc: &ValkeyCluster,
    stop: &Arc<AtomicBool>,
    max: usize,
) -> Vec<tokio::task::JoinHandle<Vec<Outcome>>> {
    (0..16)
        .map(|task| {
            let rc = rc.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut outcomes = Vec::new();
                for n in 0..max {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let key = format!("w:{task}:{}", n % 200);
                    let value = format!("{task}-{n}");
                    let started = Instant::now();
                    let result = rc.set(&key, &value).await;
                    outcomes.push(Outcome {
                        key,
                        value,
                        took: started.elapsed(),
                        at: Instant::now(),
                        result,
                    });
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                outcomes
            })
        })
        .collect()
}

/// Confirms a primary's writes on its replica with `WAIT 1` until the
/// primary stops answering, and returns the latest moment before which
/// every write it acknowledged is on the replica. `WAIT` covers the writes
/// of its own connection, so each round writes a key of its own to the
/// primary and then waits: the replica acknowledging that write also has
/// every write the primary acknowledged before it, whichever connection it
/// came on. (The client's shared connection cannot carry `WAIT`.)
async fn replication_confirmed(port: u16, key: String, stop: Arc<AtomicBool>) -> Option<Instant> {
    let config = valkey_client::ConnectionConfig::tcp("127.0.0.1", port)
        .response_timeout(Some(Duration::from_millis(300)));
    let mut conn = valkey_client::Connection::connect(&config).await.ok()?;
    let mut confirmed = None;
    while !stop.load(Ordering::Relaxed) {
        let before = Instant::now();
        if conn
            .request(&Cmd::new("SET").arg(&key).arg("x"))
            .await
            .is_err()
        {
            break;
        }
        match conn.request(&Cmd::new("WAIT").arg(1).arg(100)).await {
            Ok(replicas) if replicas.as_int() == Some(1) => confirmed = Some(before),
            Ok(_) => {}
            Err(_) => break,
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    confirmed
}

/// Kills (or freezes) primary 0 under 16 writers and checks: the other
/// shards see no error; the dead shard's commands succeed within 1 s of
/// the survivors reporting its replica promoted; no call outlives its
/// deadline by more than 50 ms; every acknowledged write that `WAIT 1`
/// confirmed on the replica before the fault, every write
/// to another shard, and every write after the promotion reads back.
async fn primary_lost_under_load(freeze: bool) {
    let mut cluster = Cluster::start(ClusterConfig::default()).await.unwrap();
    let seen = Arc::new(Seen::default());
    let deadline = Duration::from_secs(2);
    let rc = builder(&cluster, &seen)
        .response_timeout(Some(Duration::from_millis(300)))
        .request_timeout(Some(deadline))
        .build()
        .await
        .unwrap();
    let dead_port = cluster.primaries()[0].port();
    let stop = Arc::new(AtomicBool::new(false));
    let poll_stop = Arc::new(AtomicBool::new(false));
    let poll_key = (0..)
        .map(|i| format!("poll:{i}"))
        .find(|k| cluster.slot_owner(key_slot(k.as_bytes())) == dead_port)
        .unwrap();
    let confirmations = tokio::spawn(replication_confirmed(
        dead_port,
        poll_key,
        poll_stop.clone(),
    ));
    let tasks = writers(&rc, &stop, 20_000);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let fault_at = Instant::now();
    if freeze {
        cluster.node(0).freeze().unwrap();
    } else {
        cluster.kill_node(0);
    }
    let (promoted, promoted_at) = cluster
        .wait_for_failover(0, Duration::from_secs(20))
        .await
        .unwrap();
    poll_stop.store(true, Ordering::Relaxed);
    let confirmed_before = confirmations
        .await
        .unwrap()
        .expect("no replication confirmed");
    // (It may fall a moment after `fault_at`: the process stops a little
    // after the signal is sent, and writes confirmed until then count.)
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::Relaxed);
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.extend(task.await.unwrap());
    }
    let on_dead_shard = |key: &str| cluster.slot_owner(key_slot(key.as_bytes())) == dead_port;
    let mut last_dead_failure = None;
    for o in &outcomes {
        assert!(
            o.took <= deadline + Duration::from_millis(50),
            "SET {} took {:?}",
            o.key,
            o.took
        );
        match &o.result {
            Ok(()) => {}
            Err(_) if on_dead_shard(&o.key) => {
                last_dead_failure = Some(last_dead_failure.map_or(o.at, |t: Instant| t.max(o.at)));
            }
            Err(err) => panic!("{} on a healthy shard failed: {err}", o.key),
        }
    }
    if let Some(last) = last_dead_failure {
        let after = last.saturating_duration_since(promoted_at);
        assert!(
            after < Duration::from_secs(1),
            "the dead shard failed {after:?} after the promotion"
        );
        let recovered = outcomes
            .iter()
            .filter(|o| o.result.is_ok() && o.at > last && on_dead_shard(&o.key))
            .map(|o| o.at)
            .min()
            .expect("the dead shard's writes never succeeded again");
        eprintln!(
            "fault at +0; promotion reported by the survivors at +{:?}; last failure at +{:?}; \
             first success after it at +{:?}; slowest call {:?}",
            promoted_at - fault_at,
            last - fault_at,
            recovered - fault_at,
            outcomes.iter().map(|o| o.took).max().unwrap_or_default()
        );
    }
    // Read back the last acknowledged value of each key that the rules
    // above say must have survived.
    let mut last: HashMap<&str, &Outcome> = HashMap::new();
    for o in outcomes.iter().filter(|o| o.result.is_ok()) {
        last.insert(&o.key, o);
    }
    let mut checked = 0;
    for (key, o) in last {
        // A write ends after the server applied it: `o.at` is no earlier.
        let kept = !on_dead_shard(key) || o.at < confirmed_before || o.at > promoted_at;
        if !kept {
            continue;
        }
        let value: Option<String> = rc.get(key).await.unwrap();
        assert_eq!(value.as_deref(), Some(o.value.as_str()), "{key}");
        checked += 1;
    }
    assert!(checked > 1000, "only {checked} keys checked");
    assert_eq!(
        rc.slot_owner(0).unwrap(),
        format!("127.0.0.1:{}", cluster.node(promoted).port())
    );
    if freeze {
        cluster.node(0).thaw().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_primary_under_load() {
    primary_lost_under_load(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_primary_under_load() {
    primary_lost_under_load(true).await;
}

/// `CLUSTER FAILOVER` on a replica while 16 tasks read and write: no call
/// fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manual_failover_under_load_fails_no_call() {
    let cluster = Cluster::start(ClusterConfig::default()).await.unwrap();
    let seen = Arc::new(Seen::default());
    let rc = builder(&cluster, &seen).build().await.unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..4)
        .map(|r| {
            let rc = rc.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) && n < 100_000 {
                    let _: Option<String> = rc.get(format!("w:{r}:{}", n % 200)).await.unwrap();
                    n += 1;
                }
            })
        })
        .collect();
    let tasks = writers(&rc, &stop, 20_000);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let replica = cluster.primaries().len(); // the replica of primary 0
    cluster
        .manual_failover(replica, Duration::from_secs(10))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    for reader in readers {
        reader.await.unwrap();
    }
    for task in tasks {
        for o in task.await.unwrap() {
            o.result
                .unwrap_or_else(|err| panic!("{} failed: {err}", o.key));
        }
    }
    assert_eq!(
        rc.slot_owner(0).unwrap(),
        format!("127.0.0.1:{}", cluster.node(replica).port())
    );
}

/// Every node killed, then restarted on the same ports: the same client
/// recovers from its seeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_restarted_the_client_recovers() {
    let mut cluster = Cluster::start(ClusterConfig::new(3, 0)).await.unwrap();
    let seen = Arc::new(Seen::default());
    let rc = builder(&cluster, &seen)
        .retry(Retry::new(ExponentialBackoff::default(), 3))
        .build()
        .await
        .unwrap();
    rc.set("before", 1).await.unwrap();
    for i in 0..cluster.nodes().len() {
        cluster.stop_node(i).await.unwrap();
    }
    // Down: calls fail, and the client keeps no loop spinning.
    let err = rc.get::<Option<i64>>("before").await.unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::Connection | ErrorKind::Cluster),
        "{err}"
    );
    for i in 0..cluster.nodes().len() {
        cluster.restart_node(i).await.unwrap();
    }
    cluster
        .wait_until_consistent(Duration::from_secs(20))
        .await
        .unwrap();
    // (The data may be gone with the processes; the client must serve.)
    let mut recovered = false;
    for _ in 0..100 {
        if rc.set("after", 2).await.is_ok() {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recovered, "the client did not recover");
    assert_eq!(rc.get::<Option<i64>>("after").await.unwrap(), Some(2));
}
