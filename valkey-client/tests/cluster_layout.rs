//! The cluster building blocks against real clusters: `key_slot` agrees with
//! `CLUSTER KEYSLOT` for 2,000 keys of every shape (plain, with hash tags,
//! empty or unbalanced braces, binary bytes), and `parse_shards` reads a
//! real `CLUSTER SHARDS` reply, under RESP2 and RESP3, into the layout the
//! test kit set up, with every key's slot owned by the node that serves it.

use valkey_client::cluster::{Route, SlotMap, key_slot, parse_shards, parse_slots, route};
use valkey_client::{Cmd, Connection, Protocol};
use valkey_testkit::{Cluster, ClusterConfig};

/// A few thousand keys from a fixed seed, so a failure can be replayed.
fn keys() -> Vec<Vec<u8>> {
    let mut rng = fastrand::Rng::with_seed(0x5107);
    let pieces: &[&[u8]] = &[
        b"{", b"}", b"{}", b"user", b"1000", b":", b"\xff", b"\x00", b"tag",
    ];
    (0..2000)
        .map(|_| {
            let mut key = Vec::new();
            for _ in 0..rng.usize(0..6) {
                if rng.bool() {
                    key.extend_from_slice(pieces[rng.usize(..pieces.len())]);
                } else {
                    key.push(rng.u8(..));
                }
            }
            key
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_slots_agree_with_cluster_keyslot() {
    let cluster = Cluster::start(ClusterConfig::new(1, 0)).await.unwrap();
    let mut conn = Connection::connect(&cluster.node(0).connection_config())
        .await
        .unwrap();
    for key in keys() {
        let reply = conn
            .request(&Cmd::new("CLUSTER").arg("KEYSLOT").arg(&key[..]))
            .await
            .unwrap();
        assert_eq!(
            reply.as_int(),
            Some(i64::from(key_slot(&key))),
            "key {:?}",
            String::from_utf8_lossy(&key)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_shards_parses_into_the_layout_the_cluster_has() {
    let cluster = Cluster::start(ClusterConfig::default()).await.unwrap();
    let expected = cluster.slot_map().await.unwrap();
    for protocol in [Protocol::Resp2, Protocol::Resp3] {
        let config = cluster.node(0).connection_config().protocol(protocol);
        let mut conn = Connection::connect(&config).await.unwrap();
        let reply = conn
            .request(&Cmd::new("CLUSTER").arg("SHARDS"))
            .await
            .unwrap();
        let map = SlotMap::new(parse_shards(&reply, "127.0.0.1").unwrap());
        assert_eq!(map.uncovered(), 0, "{protocol:?}");
        for range in &expected {
            for slot in [range.start, (range.start + range.end) / 2, range.end] {
                let shard = map.shard(slot).expect("a covered slot");
                let primary = shard.primary.as_ref().expect("a primary");
                assert_eq!(primary.port, range.primary, "{protocol:?} slot {slot}");
                assert!(primary.online);
                let mut replicas: Vec<u16> = shard.replicas.iter().map(|r| r.port).collect();
                replicas.sort_unstable();
                assert_eq!(replicas, range.replicas, "{protocol:?} slot {slot}");
            }
        }
        // A key routed by the command table lands on the node that owns it:
        // that node runs the command, the others redirect.
        for key in ["foo", "{user1}:a", "bar"] {
            let cmd = Cmd::new("SET").arg(key).arg("v");
            let Route::Slot { slot, .. } = route(&cmd).unwrap() else {
                panic!("SET routes by its key");
            };
            let owner = map.shard(slot).unwrap().primary.as_ref().unwrap();
            let node = cluster
                .nodes()
                .iter()
                .find(|n| n.port() == owner.port)
                .unwrap();
            let mut at_owner = Connection::connect(&node.connection_config())
                .await
                .unwrap();
            assert!(at_owner.request(&cmd).await.unwrap().is_ok(), "{key}");
        }
    }
    // The CLUSTER SLOTS fallback reads the same owners and replicas.
    let mut conn = Connection::connect(&cluster.node(0).connection_config())
        .await
        .unwrap();
    let shards = conn
        .request(&Cmd::new("CLUSTER").arg("SHARDS"))
        .await
        .unwrap();
    let slots = conn
        .request(&Cmd::new("CLUSTER").arg("SLOTS"))
        .await
        .unwrap();
    let from_shards = SlotMap::new(parse_shards(&shards, "127.0.0.1").unwrap());
    let from_slots = SlotMap::new(parse_slots(&slots, "127.0.0.1").unwrap());
    assert_eq!(from_slots.uncovered(), 0);
    for slot in (0..16384u16).step_by(97) {
        let (a, b) = (
            from_shards.shard(slot).unwrap(),
            from_slots.shard(slot).unwrap(),
        );
        let port = |s: &valkey_client::cluster::Shard| s.primary.as_ref().map(|p| p.port);
        assert_eq!(port(a), port(b), "slot {slot}");
        let replicas = |s: &valkey_client::cluster::Shard| {
            let mut r: Vec<u16> = s.replicas.iter().map(|r| r.port).collect();
            r.sort_unstable();
            r
        };
        assert_eq!(replicas(a), replicas(b), "slot {slot}");
    }
}
