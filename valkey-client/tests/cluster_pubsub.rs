//! The cluster `Subscriber`: shard channels on every shard follow slot
//! migrations (atomic and legacy) and primary failovers (manual, and a
//! killed primary), checked with `PUBSUB SHARDNUMSUB` on the new owner
//! within 2 s, and messages `SPUBLISH`ed afterwards arrive; plain channels
//! and patterns work beside them.

use std::collections::BTreeSet;
use std::ops::RangeInclusive;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use valkey_client::cluster::key_slot;
use valkey_client::{
    Cmd, Event, ExponentialBackoff, Message, MessageKind, Retry, Subscriber, ValkeyCluster,
};
use valkey_testkit::{Cluster, ClusterConfig, Server};

/// The clusters of these tests are started one at a time: two at once on
/// a small machine would make the 2 s bound a measure of the machine.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// How long a shard channel may take to be back on its new owner.
const FOLLOW_WITHIN: Duration = Duration::from_secs(2);

/// `(shard channels, gap)` of each `Resubscribed` event.
type Gaps = Arc<Mutex<Vec<(usize, Duration)>>>;

async fn client(cluster: &Cluster) -> (ValkeyCluster, Gaps) {
    let (host, port) = cluster.seed_addrs()[0].clone();
    let gaps: Gaps = Arc::default();
    let seen = gaps.clone();
    let rc = ValkeyCluster::builder()
        .seed(host, port)
        .retry(Retry::new(ExponentialBackoff::default(), 5))
        .on_event(move |event| {
            if let Event::Resubscribed {
                shard_channels,
                gap,
                ..
            } = event
            {
                seen.lock().unwrap().push((shard_channels.len(), *gap));
            }
        })
        .build()
        .await
        .unwrap();
    (rc, gaps)
}

/// `per_range` channel names whose slots fall in each of `ranges`.
fn channels_in(ranges: &[RangeInclusive<u16>], per_range: usize) -> Vec<Vec<String>> {
    let mut found: Vec<Vec<String>> = vec![Vec::new(); ranges.len()];
    for i in 0..1_000_000u32 {
        if found.iter().all(|f| f.len() >= per_range) {
            break;
        }
        let name = format!("sch:{i}");
        let slot = key_slot(name.as_bytes());
        if let Some(r) = ranges.iter().position(|r| r.contains(&slot))
            && found[r].len() < per_range
        {
            found[r].push(name);
        }
    }
    assert!(found.iter().all(|f| f.len() == per_range));
    found
}

/// `PUBSUB SHARDNUMSUB` on `node`: the subscriber count of each channel.
async fn shardnumsub(node: &Server, channels: &[String]) -> Vec<i64> {
    let mut conn = node.connect().await.unwrap();
    let reply = conn
        .request(&Cmd::new("PUBSUB").arg("SHARDNUMSUB").args(channels))
        .await
        .unwrap();
    let flat: Vec<valkey_client::Value> = match reply {
        valkey_client::Value::Map(pairs) => pairs.into_iter().flat_map(|(k, v)| [k, v]).collect(),
        valkey_client::Value::Array(items) => items,
        other => panic!("PUBSUB SHARDNUMSUB: {other:?}"),
    };
    flat.chunks(2).map(|kv| kv[1].as_int().unwrap()).collect()
}

/// Polls `PUBSUB SHARDNUMSUB` on `node` until every channel has its one
/// subscriber there; how long that took from `since`, or `None` after 10 s.
async fn subscribed_on(node: &Server, channels: &[String], since: Instant) -> Option<Duration> {
    loop {
        if shardnumsub(node, channels).await.iter().all(|&n| n == 1) {
            return Some(since.elapsed());
        }
        if since.elapsed() > Duration::from_secs(10) {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The next message, within 5 s.
async fn recv(sub: &mut Subscriber) -> Message {
    tokio::time::timeout(Duration::from_secs(5), sub.next())
        .await
        .expect("a message within 5 s")
        .expect("the stream goes on")
}

/// `SPUBLISH`es one message to every channel (each reaching its one
/// subscriber) and checks that each arrives.
async fn every_channel_delivers(
    rc: &ValkeyCluster,
    sub: &mut Subscriber,
    channels: &[String],
    tag: &str,
) {
    for channel in channels {
        let receivers: i64 = rc
            .request(&Cmd::new("SPUBLISH").arg(channel).arg(tag))
            .await
            .unwrap();
        assert_eq!(receivers, 1, "SPUBLISH {channel} after {tag}");
    }
    let mut got = BTreeSet::new();
    while got.len() < channels.len() {
        let msg = recv(sub).await;
        if msg.payload_str() == Some(tag) {
            assert_eq!(msg.kind, MessageKind::Sharded);
            got.insert(msg.channel_str().unwrap().to_string());
        }
    }
    assert_eq!(got, channels.iter().cloned().collect::<BTreeSet<_>>());
}

fn all(groups: &[Vec<String>]) -> Vec<String> {
    groups.iter().flatten().cloned().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shard_channels_follow_atomic_and_legacy_slot_migrations() {
    let _alone = SERIAL.lock().await;
    let cluster = Cluster::start(ClusterConfig::default()).await.unwrap();
    let (rc, gaps) = client(&cluster).await;
    // Shards: 0..=5460 (node 0), 5461..=10922 (node 1), 10923..=16383 (node 2).
    let groups = channels_in(
        &[
            0..=999,
            1000..=5460,
            5461..=5600,
            5601..=10922,
            10923..=16383,
        ],
        8,
    );
    let channels = all(&groups);
    // A second client whose view will be stale after the migration.
    let (host, port) = cluster.seed_addrs()[0].clone();
    let stale = ValkeyCluster::builder()
        .seed(host, port)
        .periodic_topology_refresh(None)
        .build()
        .await
        .unwrap();
    let mut sub = rc.subscriber().await.unwrap();
    sub.ssubscribe(&channels).await.unwrap();
    sub.subscribe(["plain"]).await.unwrap();
    sub.psubscribe(["plain.*"]).await.unwrap();
    assert_eq!(sub.shard_channels().len(), channels.len());
    for (group, node) in groups.iter().zip([0, 0, 1, 1, 2]) {
        assert!(
            shardnumsub(cluster.node(node), group)
                .await
                .iter()
                .all(|&n| n == 1)
        );
    }
    every_channel_delivers(&rc, &mut sub, &channels, "before").await;

    // Atomic: slots 0..=999 from node 0 to node 1.
    cluster
        .migrate_slots_atomic(0..=999, 0, 1, Duration::from_secs(60))
        .await
        .unwrap();
    let took = subscribed_on(cluster.node(1), &groups[0], Instant::now()).await;
    eprintln!("atomic migration: on the new owner after {took:?}");
    assert!(took.is_some_and(|t| t < FOLLOW_WITHIN), "atomic: {took:?}");
    assert_eq!(shardnumsub(cluster.node(0), &groups[0]).await, vec![0; 8]);
    every_channel_delivers(&rc, &mut sub, &channels, "after-atomic").await;
    // The stale view sends SSUBSCRIBE to node 0, which answers MOVED: the
    // call follows it and returns once node 1 confirmed.
    assert_eq!(stale.slot_owner(0), Some(cluster.node(0).addr()));
    let mut late = stale.subscriber().await.unwrap();
    late.ssubscribe(&groups[0]).await.unwrap();
    assert_eq!(shardnumsub(cluster.node(1), &groups[0]).await, vec![2; 8]);
    assert_eq!(
        stale.slot_owner(key_slot(groups[0][0].as_bytes())),
        Some(cluster.node(1).addr())
    );
    drop(late);
    assert!(
        subscribed_on(cluster.node(1), &groups[0], Instant::now())
            .await
            .is_some()
    );

    // Legacy: slots 5461..=5600 from node 1 to node 2.
    cluster
        .migrate_slots_legacy(5461..=5600, 1, 2, Duration::from_secs(60))
        .await
        .unwrap();
    let took = subscribed_on(cluster.node(2), &groups[2], Instant::now()).await;
    eprintln!("legacy migration: on the new owner after {took:?}");
    assert!(took.is_some_and(|t| t < FOLLOW_WITHIN), "legacy: {took:?}");
    every_channel_delivers(&rc, &mut sub, &channels, "after-legacy").await;

    // Each move was reported as a gap of the channels it took.
    let gaps = gaps.lock().unwrap().clone();
    let moved: usize = gaps.iter().map(|(n, _)| n).sum();
    assert_eq!(moved, 16, "{gaps:?}");
    assert_eq!(sub.gaps() as usize, gaps.len());
    // Plain channels and patterns beside them. (PUBLISH counts only the
    // receivers of the node it ran on; the message reaches every node.)
    let _: i64 = rc
        .request(&Cmd::new("PUBLISH").arg("plain").arg("p"))
        .await
        .unwrap();
    let msg = recv(&mut sub).await;
    assert_eq!(
        (msg.kind, msg.channel_str()),
        (MessageKind::Message, Some("plain"))
    );
    let _: i64 = rc
        .request(&Cmd::new("PUBLISH").arg("plain.x").arg("p"))
        .await
        .unwrap();
    assert_eq!(recv(&mut sub).await.pattern_str(), Some("plain.*"));
    assert_eq!(sub.shard_channels().len(), channels.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shard_channels_follow_a_manual_failover_and_a_killed_primary() {
    let _alone = SERIAL.lock().await;
    let mut cluster = Cluster::start(ClusterConfig::default()).await.unwrap();
    let (rc, gaps) = client(&cluster).await;
    let groups = channels_in(&[0..=5460, 5461..=10922, 10923..=16383], 10);
    let channels = all(&groups);
    let mut sub = rc.subscriber().await.unwrap();
    sub.ssubscribe(&channels).await.unwrap();
    every_channel_delivers(&rc, &mut sub, &channels, "before").await;

    // Manual failover of shard 0 to its replica, node 3.
    cluster
        .manual_failover(3, Duration::from_secs(30))
        .await
        .unwrap();
    let took = subscribed_on(cluster.node(3), &groups[0], Instant::now()).await;
    eprintln!("manual failover: on the new owner after {took:?}");
    assert!(
        took.is_some_and(|t| t < FOLLOW_WITHIN),
        "manual failover: {took:?}"
    );
    every_channel_delivers(&rc, &mut sub, &channels, "after-manual").await;

    // Shard 1's primary killed: its replica takes over.
    cluster.kill_node(1);
    let (new_primary, agreed_at) = cluster
        .wait_for_failover(1, Duration::from_secs(30))
        .await
        .unwrap();
    let took = subscribed_on(cluster.node(new_primary), &groups[1], agreed_at).await;
    eprintln!("killed primary: on the new owner {took:?} after the survivors agreed");
    assert!(
        took.is_some_and(|t| t < FOLLOW_WITHIN),
        "killed primary: {took:?}"
    );
    every_channel_delivers(&rc, &mut sub, &channels, "after-kill").await;

    let gaps = gaps.lock().unwrap().clone();
    let moved: usize = gaps.iter().map(|(n, _)| n).sum();
    assert_eq!(moved, 20, "{gaps:?}");
    assert_eq!(sub.shard_channels().len(), channels.len());
}
