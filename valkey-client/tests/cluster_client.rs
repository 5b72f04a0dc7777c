//! `ValkeyCluster` against a real 3-primary, 1-replica cluster: routing by
//! slot, commands split by slot and merged in key order, keyless commands
//! fanned out and combined by their response policy, pipelines over every
//! slot, one-slot transactions, blocking commands, refused state commands,
//! reads from replicas, and the options' errors.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use valkey_client::Commands;
use valkey_client::{
    Cmd, ErrorKind, Event, Pipeline, ReadFrom, Target, ValkeyCluster, Value, cluster::key_slot,
};
use valkey_testkit::{Cluster, ClusterConfig};

mod common;
use common::cluster::{counting, read_until_present, served_a_get};

async fn client(cluster: &Cluster) -> ValkeyCluster {
    client_counting_redirections(cluster).await.0
}

/// A client, and the number of MOVED/ASK redirections it has followed.
async fn client_counting_redirections(cluster: &Cluster) -> (ValkeyCluster, Arc<AtomicUsize>) {
    let (builder, redirections) =
        counting(cluster, |event| matches!(event, Event::Redirected { .. }));
    let rc = builder
        .response_timeout(Some(Duration::from_secs(5)))
        .build()
        .await
        .unwrap();
    (rc, redirections)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_by_slot_splits_fans_out_and_pipelines() {
    let cluster = Cluster::start(ClusterConfig::default()).await.unwrap();
    let (rc, redirections) = client_counting_redirections(&cluster).await;

    // The client's view agrees with the cluster's layout.
    for slot in [0u16, 5000, 5461, 5462, 10922, 10923, 16383] {
        let owner = rc.slot_owner(slot).unwrap();
        assert_eq!(
            owner,
            format!("127.0.0.1:{}", cluster.slot_owner(slot)),
            "slot {slot}"
        );
    }

    // Keyed commands land on the slot owner: every key reads back, and
    // each node holds exactly the keys of its slots.
    for i in 0..300 {
        rc.set(format!("key:{i}"), i).await.unwrap();
    }
    for i in 0..300 {
        let v: Option<i64> = rc.get(format!("key:{i}")).await.unwrap();
        assert_eq!(v, Some(i));
    }
    let mut on_primaries = 0;
    for primary in cluster.primaries() {
        let mut conn = primary.connect().await.unwrap();
        let keys = conn.request(&Cmd::new("KEYS").arg("key:*")).await.unwrap();
        for key in keys.as_slice().unwrap() {
            let slot = key_slot(key.as_bytes().unwrap());
            assert_eq!(cluster.slot_owner(slot), primary.port());
            on_primaries += 1;
        }
    }
    assert_eq!(on_primaries, 300);
    // Straight to the owner: no command needed a redirection.
    assert_eq!(redirections.load(Ordering::Relaxed), 0);

    // Cross-slot MSET/MGET/EXISTS/DEL of 1,000 keys: right values, key order.
    let keys: Vec<String> = (0..1000).map(|i| format!("multi:{i}")).collect();
    let mut mset = Cmd::new("MSET");
    for (i, key) in keys.iter().enumerate() {
        mset.push_arg(key).push_arg(format!("v{i}"));
    }
    let ok: String = rc.request(&mset).await.unwrap();
    assert_eq!(ok, "OK");
    let mut mget = Cmd::new("MGET").args(&keys);
    mget.push_arg("multi:missing");
    let values: Vec<Option<String>> = rc.request(&mget).await.unwrap();
    assert_eq!(values.len(), 1001);
    for (i, value) in values[..1000].iter().enumerate() {
        assert_eq!(value.as_deref(), Some(format!("v{i}").as_str()));
    }
    assert_eq!(values[1000], None);
    let exists: i64 = rc.request(&Cmd::new("EXISTS").args(&keys)).await.unwrap();
    assert_eq!(exists, 1000);
    assert_eq!(rc.del(&keys[..500]).await.unwrap(), 500);
    let exists: i64 = rc.request(&Cmd::new("EXISTS").args(&keys)).await.unwrap();
    assert_eq!(exists, 500);

    // Keyless commands: DBSIZE sums every primary; KEYS concatenates.
    let dbsize: i64 = rc.request(&Cmd::new("DBSIZE")).await.unwrap();
    assert_eq!(dbsize, 300 + 500);
    let all: Vec<String> = rc.request(&Cmd::new("KEYS").arg("key:*")).await.unwrap();
    assert_eq!(all.len(), 300);
    let random: String = rc.request(&Cmd::new("RANDOMKEY")).await.unwrap();
    assert!(
        random.starts_with("key:") || random.starts_with("multi:"),
        "{random}"
    );
    let info: Value = rc.request(&Cmd::new("INFO").arg("server")).await.unwrap();
    match info {
        Value::Map(per_node) => assert_eq!(per_node.len(), 3, "one INFO per primary"),
        other => panic!("INFO gave {other:?}"),
    }
    let per_node: Value = rc
        .request_on(&Target::AllPrimaries, &Cmd::new("DBSIZE"))
        .await
        .unwrap();
    assert_eq!(per_node.as_int(), Some(800));
    let one: i64 = rc
        .request_on(
            &Target::Slot(key_slot(b"key:1")),
            &Cmd::new("EXISTS").arg("key:1"),
        )
        .await
        .unwrap();
    assert_eq!(one, 1);

    // A multi-key command the client does not split is a client-side error.
    let err = rc
        .request::<Value>(&Cmd::new("SUNION").arg("a").arg("b"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CrossSlot);

    // A pipeline over every slot: results in order, INCRs once each.
    let mut pipe = Pipeline::new();
    for i in 0..2000 {
        pipe.cmd("INCR").arg(format!("counter:{i}"));
        pipe.cmd("GET").arg(format!("counter:{i}"));
    }
    pipe.cmd("MGET").arg("counter:0").arg("counter:1");
    let results = rc.pipeline(&mut pipe).await.unwrap();
    assert_eq!(results.len(), 4001);
    for i in 0..2000 {
        assert_eq!(results[2 * i].as_ref().unwrap().as_int(), Some(1));
        assert_eq!(results[2 * i + 1].as_ref().unwrap().as_str(), Some("1"));
    }
    let both = results[4000].as_ref().unwrap().as_slice().unwrap();
    assert_eq!(both.len(), 2);

    // A transaction within one slot runs; across slots it is refused.
    let mut tx = Pipeline::new();
    tx.cmd("MULTI");
    tx.cmd("SET").arg("{user1}:a").arg(1);
    tx.cmd("INCR").arg("{user1}:b");
    tx.cmd("EXEC");
    let results = rc.pipeline(&mut tx).await.unwrap();
    let exec = results[3].as_ref().unwrap().as_slice().unwrap();
    assert_eq!(exec[1].as_int(), Some(1));
    let mut cross = Pipeline::new();
    cross.cmd("MULTI");
    cross.cmd("SET").arg("a").arg(1);
    cross.cmd("SET").arg("b").arg(1);
    cross.cmd("EXEC");
    let err = rc.pipeline(&mut cross).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CrossSlot);

    // State commands are refused, as on the standalone client.
    let err = rc
        .request::<Value>(&Cmd::new("SUBSCRIBE").arg("chan"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::StatefulCommand);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_commands_run_on_their_slot_owner_without_holding_others() {
    let cluster = Cluster::start(ClusterConfig::default()).await.unwrap();
    let rc = client(&cluster).await;
    let waiter = {
        let rc = rc.clone();
        tokio::spawn(async move {
            rc.request::<Option<Vec<String>>>(&Cmd::new("BLPOP").arg("queue").arg(5))
                .await
        })
    };
    // Meanwhile ordinary traffic to every shard, including the same one.
    for i in 0..200 {
        rc.set(format!("k{i}"), i).await.unwrap();
    }
    let pushed: i64 = rc
        .request(&Cmd::new("RPUSH").arg("queue").arg("job"))
        .await
        .unwrap();
    assert_eq!(pushed, 1);
    let popped = waiter.await.unwrap().unwrap();
    assert_eq!(popped, Some(vec!["queue".to_string(), "job".to_string()]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_go_to_replicas_when_asked() {
    let cluster = Cluster::start(ClusterConfig::default()).await.unwrap();
    let (host, port) = cluster.seed_addrs()[0].clone();
    let rc = ValkeyCluster::builder()
        .seed(host, port)
        .read_from(ReadFrom::PreferReplica)
        .build()
        .await
        .unwrap();
    rc.set("replicated", "yes").await.unwrap();
    let owner = cluster.slot_owner(key_slot(b"replicated"));
    let primary = cluster
        .primaries()
        .iter()
        .position(|p| p.port() == owner)
        .unwrap();
    let replica = &cluster.replicas_of(primary)[0];
    let mut conn = replica.connect().await.unwrap();
    conn.request(&Cmd::new("WAIT").arg(1).arg(1000)).await.ok();
    // Replication is asynchronous: wait until the replica has the key.
    let seen = read_until_present(&rc, "replicated").await;
    assert_eq!(seen.as_deref(), Some("yes"));
    assert!(served_a_get(&mut conn).await, "the replica served no GET");
    // Writes still go to the primary.
    rc.set("replicated", "again").await.unwrap();
}

#[tokio::test]
async fn options_errors_are_clear() {
    let err = ValkeyCluster::builder().build().await.unwrap_err();
    assert!(err.to_string().contains("seed"), "{err}");
    let err = ValkeyCluster::builder()
        .seed_urls(["unix:///tmp/x.sock"])
        .unwrap_err();
    assert!(err.to_string().contains("TCP"), "{err}");
    // No node answers: the build fails with the connection error, quickly.
    let started = std::time::Instant::now();
    let err = ValkeyCluster::builder()
        .seed("127.0.0.1", 1)
        .build()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connection, "{err}");
    assert!(started.elapsed() < Duration::from_secs(3));
}

/// RESP2 and a password: the per-node options apply to every node, through
/// a seed URL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resp2_and_a_password_from_the_seed_url() {
    let mut config = ClusterConfig::new(3, 0);
    config.server = valkey_testkit::ServerConfig::new().password("s3cret");
    let cluster = Cluster::start(config).await.unwrap();
    let port = cluster.primaries()[0].port();
    let rc = ValkeyCluster::builder()
        .seed_urls([format!("valkey://:s3cret@127.0.0.1:{port}?protocol=2")])
        .unwrap()
        .build()
        .await
        .unwrap();
    let keys: Vec<String> = (0..100).map(|i| format!("p:{i}")).collect();
    for key in &keys {
        rc.set(key, key).await.unwrap();
    }
    let values: Vec<String> = rc.request(&Cmd::new("MGET").args(&keys)).await.unwrap();
    assert_eq!(values, keys);
    // Without the password every node refuses, and says so.
    let err = ValkeyCluster::builder()
        .seed("127.0.0.1", port)
        .build()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Authentication, "{err}");
}

/// An unassigned slot: `require_full_coverage` refuses to build; without
/// it, that slot's commands fail with SlotNotCovered and the others run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uncovered_slot() {
    let cluster =
        Cluster::start(ClusterConfig::new(3, 0).config("cluster-require-full-coverage", "no"))
            .await
            .unwrap();
    let slot = key_slot(b"orphan");
    for node in cluster.primaries() {
        let mut admin = node.connect().await.unwrap();
        admin
            .request(&Cmd::new("CLUSTER").arg("DELSLOTS").arg(slot))
            .await
            .unwrap();
    }
    let port = cluster.primaries()[0].port();
    let err = ValkeyCluster::builder()
        .seed("127.0.0.1", port)
        .require_full_coverage(true)
        .build()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::SlotNotCovered, "{err}");
    let rc = ValkeyCluster::builder()
        .seed("127.0.0.1", port)
        .cluster_error_retry_attempts(1)
        .build()
        .await
        .unwrap();
    let err = rc.get::<Option<String>>("orphan").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::SlotNotCovered, "{err}");
    rc.set("other", 1).await.unwrap();
}

/// A multi-key command in a slot being migrated, with one key moved and
/// one not: the source answers TRYAGAIN; the client waits a few
/// milliseconds and tries again until the migration ends, then follows
/// the MOVED.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tryagain_during_a_migration_is_waited_out() {
    let cluster = Cluster::start(ClusterConfig::new(3, 0)).await.unwrap();
    let rc = client(&cluster).await;
    rc.set("{mig}a", "A").await.unwrap();
    rc.set("{mig}b", "B").await.unwrap();
    let slot = key_slot(b"mig");
    let from = cluster.primary_index_for_slot(slot).await.unwrap();
    let to = (from + 1) % 3;
    let (from_id, to_id) = (
        cluster.node_id(from).await.unwrap(),
        cluster.node_id(to).await.unwrap(),
    );
    let mut source = cluster.node(from).connect().await.unwrap();
    let mut target = cluster.node(to).connect().await.unwrap();
    let setslot = |state: &str, id: &str| {
        Cmd::new("CLUSTER")
            .arg("SETSLOT")
            .arg(slot)
            .arg(state)
            .arg(id)
    };
    target
        .request(&setslot("IMPORTING", &from_id))
        .await
        .unwrap();
    source.request(&setslot("MIGRATING", &to_id)).await.unwrap();
    let to_port = cluster.node(to).port();
    let migrate = |key: &str| {
        Cmd::new("MIGRATE")
            .arg("127.0.0.1")
            .arg(to_port)
            .arg("")
            .arg(0)
            .arg(5000)
            .arg("KEYS")
            .arg(key)
    };
    source.request(&migrate("{mig}a")).await.unwrap();
    let mget = {
        let rc = rc.clone();
        tokio::spawn(async move {
            rc.request::<Vec<String>>(&Cmd::new("MGET").arg("{mig}a").arg("{mig}b"))
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(30)).await;
    source.request(&migrate("{mig}b")).await.unwrap();
    for node in [&mut target, &mut source] {
        node.request(&setslot("NODE", &to_id)).await.unwrap();
    }
    let values = mget.await.unwrap().unwrap();
    assert_eq!(values, ["A", "B"]);
    // (The MGET may have ended with an ASK, which leaves the map as it is;
    // the next command meets the MOVED.)
    let a: Option<String> = rc.get("{mig}a").await.unwrap();
    assert_eq!(a.as_deref(), Some("A"));
    assert_eq!(rc.slot_owner(slot).unwrap(), format!("127.0.0.1:{to_port}"));
}

/// Reads with availability-zone affinity go to the replica in the client's
/// zone (the `availability-zone` the servers report); a topology read runs
/// every `periodic_topology_refresh` without any trigger; a command goes to
/// a node named by address; a database other than 0 is selected on every
/// node (Valkey 9 clusters have numbered databases).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zones_periodic_refresh_node_targets_and_databases() {
    let cluster = Cluster::start(ClusterConfig::default().config("cluster-databases", "16"))
        .await
        .unwrap();
    let owner = cluster.slot_owner(key_slot(b"zoned"));
    let primary = cluster
        .primaries()
        .iter()
        .position(|p| p.port() == owner)
        .unwrap();
    let replica = &cluster.replicas_of(primary)[0];
    let mut admin = replica.connect().await.unwrap();
    admin
        .request(
            &Cmd::new("CONFIG")
                .arg("SET")
                .arg("availability-zone")
                .arg("az-b"),
        )
        .await
        .unwrap();
    let reads = Arc::new(AtomicUsize::new(0));
    let counter = reads.clone();
    let rc = ValkeyCluster::builder()
        .seed("127.0.0.1", owner)
        .read_from(ReadFrom::AzAffinity("az-b".into()))
        .periodic_topology_refresh(Some(Duration::from_millis(200)))
        .db(3)
        .on_event(move |event| {
            if matches!(event, Event::TopologyRefreshed { .. }) {
                counter.fetch_add(1, Ordering::Relaxed);
            }
        })
        .build()
        .await
        .unwrap();
    rc.set("zoned", "z").await.unwrap();
    let seen = read_until_present(&rc, "zoned").await;
    assert_eq!(seen.as_deref(), Some("z"));
    assert!(
        served_a_get(&mut admin).await,
        "the az-b replica served no GET"
    );
    // The key is in database 3 of its primary, not in 0.
    let mut on_primary = cluster.primaries()[primary].connect().await.unwrap();
    let in_db0 = on_primary
        .request(&Cmd::new("EXISTS").arg("zoned"))
        .await
        .unwrap();
    assert_eq!(in_db0.as_int(), Some(0));
    on_primary
        .request(&Cmd::new("SELECT").arg(3))
        .await
        .unwrap();
    let in_db3 = on_primary
        .request(&Cmd::new("EXISTS").arg("zoned"))
        .await
        .unwrap();
    assert_eq!(in_db3.as_int(), Some(1));
    // By address: the primary's DBSIZE only.
    let size: i64 = rc
        .request_on(
            &Target::Node {
                host: "127.0.0.1".into(),
                port: owner,
            },
            &Cmd::new("DBSIZE"),
        )
        .await
        .unwrap();
    assert_eq!(size, 1);
    // Periodic reads, with nothing triggering them.
    let before = reads.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let periodic = reads.load(Ordering::Relaxed) - before;
    assert!(
        (3..=7).contains(&periodic),
        "{periodic} periodic topology reads in 1.1 s"
    );
}

/// At most once across the cluster: one primary behind a fault proxy that
/// cuts the connection after an INCR ran. By default the INCR is not sent
/// again (not on that node, not after a topology read, not elsewhere): the
/// caller gets an error saying it may have run, and it ran once. Opted in,
/// it is sent again and runs twice, as asked. A SET cut the same way is
/// safe to repeat and succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_most_once_holds_across_the_cluster() {
    let cluster = Cluster::start(ClusterConfig::new(3, 0)).await.unwrap();
    let node = &cluster.primaries()[0];
    let proxy = valkey_testkit::FaultProxy::start(node.port())
        .await
        .unwrap();
    common::cluster::announce_port(node, proxy.port()).await;
    let mut ports: Vec<u16> = cluster.primaries()[1..].iter().map(|n| n.port()).collect();
    ports.push(proxy.port());
    common::cluster::wait_announced(&cluster, &ports).await;
    let key = (0..)
        .map(|i| format!("once:{i}"))
        .find(|k| cluster.slot_owner(key_slot(k.as_bytes())) == node.port())
        .unwrap();
    let rc = ValkeyCluster::builder()
        .seed("127.0.0.1", ports[0])
        .retry(valkey_client::Retry::new(valkey_client::NoBackoff, 3))
        .build()
        .await
        .unwrap();
    assert_eq!(
        rc.slot_owner(key_slot(key.as_bytes())),
        Some(format!("127.0.0.1:{}", proxy.port()))
    );
    rc.set(&key, 0).await.unwrap();

    proxy.cut_after_request("INCR");
    let err = rc.incr(&key).await.unwrap_err();
    assert_eq!(
        err.delivery(),
        valkey_client::Delivery::SentNoReply,
        "{err}"
    );
    let mut direct = node.connect().await.unwrap();
    let value = direct.request(&Cmd::new("GET").arg(&key)).await.unwrap();
    assert_eq!(value.as_str(), Some("1"), "the INCR ran once");

    proxy.cut_after_request("INCR");
    let options = valkey_client::CallOptions::new().retry_non_idempotent(true);
    let n: i64 = rc
        .request_with(&Cmd::new("INCR").arg(&key), &options)
        .await
        .unwrap();
    assert_eq!(n, 3, "opted in: run again after the lost reply");

    proxy.cut_after_request("SET");
    rc.set(&key, "safe").await.unwrap();
    let value: Option<String> = rc.get(&key).await.unwrap();
    assert_eq!(value.as_deref(), Some("safe"));
}
