//! Typed command methods (`Commands`) on a `ValkeyCluster`, in RESP2 and
//! RESP3: the CLUSTER introspection commands, multi-key commands split
//! across slots, and typed pipelines and transactions.

use std::collections::{HashMap, HashSet};

use valkey_client::commands::*;
use valkey_client::{
    Commands, FromValue, Pipeline, Protocol, Result, Transaction, ValkeyCluster, Value,
};
use valkey_testkit::{Cluster, ClusterConfig};

#[tokio::test]
async fn typed_commands_on_a_cluster() {
    let cluster = Cluster::start(ClusterConfig::default())
        .await
        .expect("start a cluster");
    for protocol in [Protocol::Resp2, Protocol::Resp3] {
        let rc = ValkeyCluster::builder()
            .seed("127.0.0.1", cluster.node(0).port())
            .protocol(protocol)
            .build()
            .await
            .expect("connect");
        if let Err(e) = cluster_family(protocol, &rc).await {
            panic!("{protocol:?}: {e}");
        }
    }
}

async fn cluster_family(p: Protocol, rc: &ValkeyCluster) -> Result<()> {
    // CLUSTER KEYSLOT / INFO / SHARDS / MYID
    assert_eq!(rc.cluster_keyslot("foo").await?, 12182);
    assert_eq!(
        rc.cluster_keyslot("{user1}:a").await?,
        rc.cluster_keyslot("{user1}:b").await?
    );
    let info = rc.cluster_info().await?;
    assert!(info.contains("cluster_state:ok"), "{info}");
    assert!(info.contains("cluster_known_nodes:6"), "{info}");
    let shards: Vec<HashMap<String, Value>> = rc.cluster_shards().await?;
    assert_eq!(shards.len(), 3);
    let mut covered = 0;
    for shard in &shards {
        let slots: Vec<i64> = FromValue::from_value(shard["slots"].clone())?;
        covered += slots.chunks(2).map(|r| r[1] - r[0] + 1).sum::<i64>();
        let nodes: Vec<HashMap<String, Value>> = FromValue::from_value(shard["nodes"].clone())?;
        assert_eq!(nodes.len(), 2, "a primary and its replica");
    }
    assert_eq!(covered, 16384);
    assert_eq!(rc.cluster_myid().await?.len(), 40);

    // Keys spread over the three primaries' slot ranges.
    let keys: Vec<String> = (0..12).map(|i| format!("{p:?}:k{i}")).collect();
    let mut ranges = HashSet::new();
    for k in &keys {
        ranges.insert(rc.cluster_keyslot(k).await? * 3 / 16384);
    }
    assert_eq!(ranges.len(), 3, "the keys span every primary");

    // MSET / MGET / EXISTS / DEL across slots, replies in key order.
    let pairs: Vec<(String, usize)> = keys.iter().cloned().zip(0..).collect();
    let before = rc.dbsize().await?;
    rc.mset(&pairs).await?;
    assert_eq!(
        rc.dbsize().await?,
        before + keys.len() as i64,
        "summed over primaries"
    );
    let mut asked = keys.clone();
    asked.insert(3, format!("{p:?}:missing"));
    let got: Vec<Option<usize>> = rc.mget(&asked).await?;
    let mut expect: Vec<Option<usize>> = (0..keys.len()).map(Some).collect();
    expect.insert(3, None);
    assert_eq!(got, expect);
    assert_eq!(rc.exists(&asked).await?, keys.len() as i64);
    assert_eq!(rc.touch(&keys).await?, keys.len() as i64);

    // Single-key families route by slot.
    let h = format!("{p:?}:hash");
    let added: i64 = rc.hset(&h, [("f", "v"), ("g", "w")]).await?;
    assert_eq!(added, 2);
    let map: HashMap<String, String> = rc.hgetall(&h).await?;
    assert_eq!(map["g"], "w");
    let z = format!("{p:?}:zset");
    let _: i64 = rc.zadd(&z, [(1.0, "a"), (2.5, "b")]).await?;
    let scores: Vec<(String, f64)> = rc
        .zrange_with(&z, 0, -1, ZrangeOptions::new().withscores())
        .await?;
    assert_eq!(scores, [("a".to_string(), 1.0), ("b".to_string(), 2.5)]);
    let r: Vec<String> = rc
        .eval_with(
            "return {KEYS[1], ARGV[1]}",
            [&h],
            EvalOptions::new().arg("x"),
        )
        .await?;
    assert_eq!(r, [h.clone(), "x".to_string()]);

    // A typed pipeline across slots; a transaction in one slot.
    let mut pipe = Pipeline::new();
    pipe.set(&keys[0], 10)
        .incr(&keys[1])
        .get(&keys[0])
        .mget([&keys[2], &keys[5]]);
    let ((), n, v, both): ((), i64, String, Vec<i64>) = rc.pipeline_into(&mut pipe).await?;
    assert_eq!((n, v.as_str(), both), (2, "10", vec![2, 5]));
    let (a, b) = (format!("{{{p:?}}}:a"), format!("{{{p:?}}}:b"));
    let mut tx = Transaction::new();
    tx.set(&a, 5).incrby(&b, 7).mget([&a, &b]);
    let ((), b_now, read): ((), i64, (i64, i64)) = rc.exec_into(&mut tx).await?;
    assert_eq!((b_now, read), (7, (5, 7)));

    let mut all = keys.clone();
    all.extend([h, z, a, b]);
    assert_eq!(rc.del(&all).await?, all.len() as i64);
    assert_eq!(rc.dbsize().await?, before);
    Ok(())
}
