//! Fault injection: freezing and thawing nodes, failovers (automatic and manual),
//! slot migrations (legacy and atomic) while a client keeps writing.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use valkey_client::cluster::{Redirect, key_slot};
use valkey_client::{Cmd, Connection, ErrorKind, Value};
use valkey_testkit::{Cluster, ClusterConfig, Server, ServerConfig, info_field};

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// PING on a fresh connection, every round trip bounded by `limit`.
async fn ping(server: &Server, limit: Duration) -> valkey_client::Result<Value> {
    let config = server
        .connection_config()
        .connect_timeout(Some(limit))
        .response_timeout(Some(limit));
    let mut conn = Connection::connect(&config).await?;
    conn.request(&Cmd::new("PING")).await
}

async fn role(server: &Server) -> String {
    let info = server.info("replication").await.unwrap();
    info_field(&info, "role").unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn freeze_and_thaw_a_standalone_server() {
    let mut server = Server::start(ServerConfig::new()).await.unwrap();
    let pid = server.pid().unwrap();
    let limit = Duration::from_millis(200);
    // A connection opened before the freeze: the request is sent, never answered.
    let mut early = Connection::connect(&server.connection_config().response_timeout(Some(limit)))
        .await
        .unwrap();

    server.freeze().unwrap();
    assert!(server.is_frozen());
    server.freeze().unwrap(); // idempotent
    let started = Instant::now();
    let err = early.request(&Cmd::new("PING")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(started.elapsed() < Duration::from_secs(1));
    assert!(
        ping(&server, limit).await.is_err(),
        "a frozen server answered"
    );

    server.thaw().unwrap();
    assert!(!server.is_frozen());
    assert_eq!(
        ping(&server, limit).await.unwrap(),
        Value::SimpleString("PONG".into())
    );

    // stop() thaws first, so SHUTDOWN is answered and it does not wait 10 s.
    server.freeze().unwrap();
    let started = Instant::now();
    server.stop().await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(!alive(pid));
    assert!(!server.is_frozen());
    assert!(server.freeze().is_err(), "froze a stopped server");
    assert!(server.thaw().is_err(), "thawed a stopped server");

    // Dropped while frozen: killed all the same.
    let server = Server::start(ServerConfig::new()).await.unwrap();
    let pid = server.pid().unwrap();
    server.freeze().unwrap();
    drop(server);
    assert!(!alive(pid), "frozen process {pid} survived drop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frozen_and_killed_primaries_fail_over() {
    let mut cluster = Cluster::start(ClusterConfig::default()).await.unwrap();
    let ids: Vec<String> = {
        let mut ids = Vec::new();
        for i in 0..cluster.nodes().len() {
            ids.push(cluster.node_id(i).await.unwrap());
        }
        ids
    };
    assert_eq!(ids[0].len(), 40);
    assert!(cluster.node_id(6).await.is_err());
    for (i, slot) in [(0, 0), (1, 5461), (2, 16383)] {
        assert_eq!(cluster.primary_index_for_slot(slot).await.unwrap(), i);
    }
    assert!(cluster.primary_index_for_slot(16384).await.is_err());

    // A frozen replica stops answering; the helpers skip it.
    cluster.node(5).freeze().unwrap();
    assert!(
        ping(cluster.node(5), Duration::from_millis(200))
            .await
            .is_err()
    );
    let started = Instant::now();
    cluster
        .wait_until_consistent(Duration::from_secs(5))
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(2));
    cluster.node(5).thaw().unwrap();
    assert!(
        ping(cluster.node(5), Duration::from_millis(200))
            .await
            .is_ok()
    );

    // Kill primary 0: its replica, node 3, takes over.
    let killed = Instant::now();
    cluster.kill_node(0);
    let (new, agreed) = cluster
        .wait_for_failover(0, Duration::from_secs(20))
        .await
        .unwrap();
    println!("failover after kill took {:?}", agreed - killed);
    assert_eq!(new, 3);
    assert!(agreed > killed && agreed <= Instant::now());
    assert_eq!(cluster.primary_index_for_slot(0).await.unwrap(), 3);
    assert_eq!(role(cluster.node(3)).await, "master");
    // The killed node's id is still known.
    assert_eq!(cluster.node_id(0).await.unwrap(), ids[0]);

    // Freeze primary 1: its replica, node 4, takes over.
    let frozen = Instant::now();
    cluster.node(1).freeze().unwrap();
    let (new, agreed) = cluster
        .wait_for_failover(1, Duration::from_secs(20))
        .await
        .unwrap();
    println!("failover after freeze took {:?}", agreed - frozen);
    assert_eq!(new, 4);
    assert_eq!(cluster.primary_index_for_slot(5461).await.unwrap(), 4);
    assert_eq!(cluster.node_id(1).await.unwrap(), ids[1]);

    // A timeout is an error, not a hang.
    let err = cluster
        .wait_for_failover(2, Duration::from_millis(100))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut, "{err}");

    // Dropped with a frozen node: every process ends.
    let pids: Vec<u32> = cluster.nodes().iter().filter_map(|n| n.pid()).collect();
    assert_eq!(pids.len(), 5);
    drop(cluster);
    for pid in pids {
        assert!(!alive(pid), "node process {pid} survived drop");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_failover_swaps_roles() {
    let cluster = Cluster::start(ClusterConfig::default()).await.unwrap();
    let started = Instant::now();
    cluster
        .manual_failover(4, Duration::from_secs(15))
        .await
        .unwrap();
    println!("manual failover took {:?}", started.elapsed());
    assert_eq!(role(cluster.node(4)).await, "master");
    assert_eq!(role(cluster.node(1)).await, "slave");
    assert_eq!(cluster.primary_index_for_slot(5461).await.unwrap(), 4);
    assert_eq!(cluster.primary_index_for_slot(10921).await.unwrap(), 4);
    // Every node, asked directly, names node 4 as the primary of 5461..=10921.
    for node in cluster.nodes() {
        let mut conn = node.connect().await.unwrap();
        let slots = conn
            .request(&Cmd::new("CLUSTER").arg("SLOTS"))
            .await
            .unwrap();
        let owner = slots
            .as_slice()
            .unwrap()
            .iter()
            .map(|entry| entry.as_slice().unwrap())
            .find(|entry| entry[0].as_int() == Some(5461))
            .map(|entry| entry[2].as_slice().unwrap()[1].as_int());
        assert_eq!(
            owner,
            Some(Some(i64::from(cluster.node(4).port()))),
            "node {}: {slots:?}",
            node.port()
        );
    }
    // A primary cannot be failed over to.
    assert!(
        cluster
            .manual_failover(2, Duration::from_secs(1))
            .await
            .is_err()
    );
    // And back.
    cluster
        .manual_failover(1, Duration::from_secs(15))
        .await
        .unwrap();
    assert_eq!(role(cluster.node(1)).await, "master");
    assert_eq!(cluster.primary_index_for_slot(5461).await.unwrap(), 1);
}

/// One hash tag per slot of `slots`, found by trying `{t0}`, `{t1}`, ...
fn tags_for(slots: std::ops::RangeInclusive<u16>) -> HashMap<u16, String> {
    let mut tags = HashMap::new();
    let wanted = slots.len();
    let mut n = 0u64;
    while tags.len() < wanted {
        let tag = format!("t{n}");
        let slot = key_slot(tag.as_bytes());
        if slots.contains(&slot) {
            tags.entry(slot).or_insert(tag);
        }
        n += 1;
    }
    tags
}

/// `count` keys spread over every slot of `slots`, with their slots.
fn keys_in(slots: std::ops::RangeInclusive<u16>, count: usize) -> Vec<(String, u16)> {
    let first = *slots.start();
    let width = slots.len();
    let tags = tags_for(slots);
    (0..count)
        .map(|i| {
            let slot = first + (i % width) as u16;
            let key = format!("{{{}}}:k{i}", tags[&slot]);
            assert_eq!(key_slot(key.as_bytes()), slot);
            (key, slot)
        })
        .collect()
}

async fn write_keys(node: &Server, keys: &[(String, u16)]) {
    let mut conn = node.connect().await.unwrap();
    let cmds: Vec<Cmd> = keys
        .iter()
        .map(|(k, _)| Cmd::new("SET").arg(k).arg(format!("v-{k}")))
        .collect();
    for reply in conn.pipeline(&cmds).await.unwrap() {
        assert!(reply.unwrap().is_ok());
    }
}

/// Reads every key from `node` directly: no redirect is followed.
async fn read_keys_from(node: &Server, keys: &[(String, u16)]) -> Vec<Value> {
    let mut conn = node.connect().await.unwrap();
    let cmds: Vec<Cmd> = keys.iter().map(|(k, _)| Cmd::new("GET").arg(k)).collect();
    conn.pipeline(&cmds)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.unwrap_or_else(|e| panic!("GET on port {}: {e}", node.port())))
        .collect()
}

/// What the concurrent writer saw.
#[derive(Debug, Default)]
struct WriterStats {
    rounds: u64,
    moved: u64,
    asked: u64,
    tryagain: u64,
    /// Last value written per key.
    last: HashMap<String, String>,
}

/// A minimal cluster client: sends `cmd` to the owner it knows for `slot`,
/// follows MOVED and ASK, retries TRYAGAIN.
async fn send(
    conns: &mut HashMap<u16, Connection>,
    owners: &mut HashMap<u16, u16>,
    stats: &mut WriterStats,
    slot: u16,
    cmd: &Cmd,
) -> Value {
    let mut port = owners[&slot];
    let mut asking = false;
    for _ in 0..100 {
        let conn = match conns.entry(port) {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(entry) => {
                let config = valkey_client::ConnectionConfig::tcp("127.0.0.1", port)
                    .response_timeout(Some(Duration::from_secs(5)));
                entry.insert(Connection::connect(&config).await.unwrap())
            }
        };
        let result = if asking {
            let mut replies = conn
                .pipeline(&[Cmd::new("ASKING"), cmd.clone()])
                .await
                .unwrap();
            replies.pop().unwrap()
        } else {
            conn.request(cmd).await
        };
        let err = match result {
            Ok(value) => return value,
            Err(err) => err,
        };
        asking = false;
        match err.kind() {
            ErrorKind::Moved => {
                stats.moved += 1;
                port = Redirect::parse(err.message(), "127.0.0.1").unwrap().port;
                owners.insert(slot, port);
            }
            ErrorKind::Ask => {
                stats.asked += 1;
                port = Redirect::parse(err.message(), "127.0.0.1").unwrap().port;
                asking = true;
            }
            ErrorKind::TryAgain => {
                stats.tryagain += 1;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            _ => panic!("{} on slot {slot}: {err}", cmd.name()),
        }
    }
    panic!("too many redirections for slot {slot}");
}

/// Writes and reads back `keys` in a loop until `stop`, checking every read.
async fn keep_writing(
    keys: Vec<(String, u16)>,
    owner_port: u16,
    stop: Arc<AtomicBool>,
) -> WriterStats {
    let mut stats = WriterStats::default();
    let mut conns = HashMap::new();
    let mut owners: HashMap<u16, u16> = keys.iter().map(|&(_, s)| (s, owner_port)).collect();
    while !stop.load(Ordering::SeqCst) {
        stats.rounds += 1;
        for (key, slot) in &keys {
            let value = format!("w{}-{key}", stats.rounds);
            let set = Cmd::new("SET").arg(key).arg(&value);
            let reply = send(&mut conns, &mut owners, &mut stats, *slot, &set).await;
            assert!(reply.is_ok(), "SET {key}: {reply:?}");
            let get = Cmd::new("GET").arg(key);
            let reply = send(&mut conns, &mut owners, &mut stats, *slot, &get).await;
            assert_eq!(reply.as_str(), Some(value.as_str()), "GET {key}");
            stats.last.insert(key.clone(), value);
        }
    }
    stats
}

/// Checks that `keys` live on node `to` (with the value the writer left, or the
/// initial one) and no longer on node `from`.
async fn check_moved(
    cluster: &Cluster,
    keys: &[(String, u16)],
    stats: &WriterStats,
    from: usize,
    to: usize,
) {
    let values = read_keys_from(cluster.node(to), keys).await;
    for ((key, _), value) in keys.iter().zip(values) {
        let want = stats
            .last
            .get(key)
            .cloned()
            .unwrap_or_else(|| format!("v-{key}"));
        assert_eq!(
            value.as_str(),
            Some(want.as_str()),
            "{key} on the new owner"
        );
    }
    let mut conn = cluster.node(from).connect().await.unwrap();
    for (key, slot) in keys.iter().take(50) {
        let count = conn
            .request(&Cmd::new("CLUSTER").arg("COUNTKEYSINSLOT").arg(*slot))
            .await
            .unwrap();
        assert_eq!(
            count.as_int(),
            Some(0),
            "slot {slot} still has keys on the source"
        );
        let err = conn.request(&Cmd::new("GET").arg(key)).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Moved, "{err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::reversed_empty_ranges)] // an empty slot range is one of the bad inputs
async fn legacy_and_atomic_migrations_move_slots_and_keys() {
    let cluster = Cluster::start(ClusterConfig::default()).await.unwrap();

    // Legacy: slots 0..=1023 with 2,000 keys from node 0 to node 1, while a client
    // keeps writing a few of them.
    let keys = keys_in(0..=1023, 2000);
    write_keys(cluster.node(0), &keys).await;
    let stop = Arc::new(AtomicBool::new(false));
    let writer = tokio::spawn(keep_writing(
        keys.iter().step_by(10).cloned().collect(),
        cluster.node(0).port(),
        stop.clone(),
    ));
    tokio::time::sleep(Duration::from_millis(50)).await;
    let started = Instant::now();
    let moved = cluster
        .migrate_slots_legacy(0..=1023, 0, 1, Duration::from_secs(30))
        .await
        .unwrap();
    let took = started.elapsed();
    tokio::time::sleep(Duration::from_millis(50)).await;
    stop.store(true, Ordering::SeqCst);
    let stats = writer.await.unwrap();
    println!(
        "legacy migration of 1024 slots, {moved} keys: {took:?}; writer: {stats:?}",
        stats = (stats.rounds, stats.moved, stats.asked, stats.tryagain)
    );
    assert_eq!(moved, 2000);
    assert!(
        took < Duration::from_secs(15),
        "legacy migration took {took:?}"
    );
    assert!(
        stats.rounds >= 2,
        "the writer did not run during the migration"
    );
    assert!(stats.moved > 0, "the writer never saw MOVED");
    for slot in [0, 512, 1023] {
        assert_eq!(cluster.primary_index_for_slot(slot).await.unwrap(), 1);
    }
    assert_eq!(cluster.primary_index_for_slot(1024).await.unwrap(), 0);
    check_moved(&cluster, &keys, &stats, 0, 1).await;

    // Atomic: slots 1024..=2047 with 1,000 keys from node 0 to node 2.
    let keys = keys_in(1024..=2047, 1000);
    write_keys(cluster.node(0), &keys).await;
    let stop = Arc::new(AtomicBool::new(false));
    let writer = tokio::spawn(keep_writing(
        keys.iter().step_by(10).cloned().collect(),
        cluster.node(0).port(),
        stop.clone(),
    ));
    tokio::time::sleep(Duration::from_millis(50)).await;
    let started = Instant::now();
    cluster
        .migrate_slots_atomic(1024..=2047, 0, 2, Duration::from_secs(30))
        .await
        .unwrap();
    let took = started.elapsed();
    tokio::time::sleep(Duration::from_millis(50)).await;
    stop.store(true, Ordering::SeqCst);
    let stats = writer.await.unwrap();
    println!(
        "atomic migration of 1024 slots: {took:?}; writer: {:?}",
        (stats.rounds, stats.moved, stats.asked, stats.tryagain)
    );
    assert!(
        stats.rounds >= 2,
        "the writer did not run during the migration"
    );
    for slot in [1024, 2047] {
        assert_eq!(cluster.primary_index_for_slot(slot).await.unwrap(), 2);
    }
    assert_eq!(cluster.primary_index_for_slot(2048).await.unwrap(), 0);
    check_moved(&cluster, &keys, &stats, 0, 2).await;
    cluster
        .wait_until_consistent(Duration::from_secs(10))
        .await
        .unwrap();

    // Bad input is an error, not a panic.
    for bad in [
        cluster
            .migrate_slots_legacy(5..=4, 0, 1, Duration::from_secs(1))
            .await
            .err(),
        cluster
            .migrate_slots_legacy(0..=16384, 0, 1, Duration::from_secs(1))
            .await
            .err(),
        cluster
            .migrate_slots_legacy(0..=1, 0, 0, Duration::from_secs(1))
            .await
            .err(),
        cluster
            .migrate_slots_legacy(0..=1, 0, 9, Duration::from_secs(1))
            .await
            .err(),
    ] {
        assert_eq!(
            bad.map(|e| e.kind()),
            Some(std::io::ErrorKind::InvalidInput)
        );
    }
    assert!(
        cluster
            .migrate_slots_atomic(0..=1, 2, 9, Duration::from_secs(1))
            .await
            .is_err()
    );
    // Node 0 no longer owns slot 0: the server's refusal comes back.
    let err = cluster
        .migrate_slots_legacy(0..=0, 0, 2, Duration::from_secs(5))
        .await
        .unwrap_err();
    println!("expected refusal: {err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_authenticate_on_a_password_cluster() {
    let mut config = ClusterConfig::new(3, 0);
    config.server = ServerConfig::new().password("s3cret");
    let cluster = Cluster::start(config).await.unwrap();
    let no_writer = WriterStats::default();

    // MIGRATE authenticates to the target (AUTH <password>).
    let keys = keys_in(100..=163, 300);
    write_keys(cluster.node(0), &keys).await;
    let moved = cluster
        .migrate_slots_legacy(100..=163, 0, 2, Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(moved, 300);
    assert_eq!(cluster.primary_index_for_slot(130).await.unwrap(), 2);
    check_moved(&cluster, &keys, &no_writer, 0, 2).await;

    // The atomic migration's own links authenticate too.
    let keys = keys_in(200..=263, 300);
    write_keys(cluster.node(0), &keys).await;
    cluster
        .migrate_slots_atomic(200..=263, 0, 1, Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(cluster.primary_index_for_slot(230).await.unwrap(), 1);
    check_moved(&cluster, &keys, &no_writer, 0, 1).await;
}
