//! Scans as streams against real servers: SCAN over 100,000 keys yields
//! each key exactly once, standalone and in a cluster over every primary;
//! MATCH, COUNT and TYPE filter; HSCAN, SSCAN and ZSCAN walk one key, in
//! RESP2 and RESP3.

use std::collections::{HashMap, HashSet};

use futures_util::{StreamExt, TryStreamExt};
use valkey_client::{Cmd, ErrorKind, Pipeline, Protocol, ScanIterOptions, Valkey, ValkeyCluster};
use valkey_testkit::{Cluster, ClusterConfig, Server, ServerConfig};

mod common;
use common::local;

const KEYS: usize = 100_000;

fn key(i: usize) -> String {
    format!("k:{i}")
}

/// Loads `KEYS` string keys and a few of other types, with pipelines of
/// 10,000 SETs.
async fn load_keys(pipeline: impl AsyncFn(&mut Pipeline)) {
    for chunk in 0..KEYS / 10_000 {
        let mut pipe = Pipeline::new();
        for i in chunk * 10_000..(chunk + 1) * 10_000 {
            pipe.cmd("SET").arg(key(i)).arg(i);
        }
        pipeline(&mut pipe).await;
    }
    let mut pipe = Pipeline::new();
    for i in 0..10 {
        pipe.cmd("RPUSH").arg(format!("k:list:{i}")).arg("x");
        pipe.cmd("SET").arg(format!("other:{i}")).arg("x");
    }
    pipeline(&mut pipe).await;
}

/// Every key yielded exactly once: no duplicate, none missing.
fn assert_each_once(yielded: &[String], expected: impl Iterator<Item = String>) {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for k in yielded {
        *seen.entry(k.as_str()).or_default() += 1;
    }
    let duplicates: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).take(5).collect();
    assert!(duplicates.is_empty(), "yielded twice: {duplicates:?}");
    let expected: HashSet<String> = expected.collect();
    assert_eq!(seen.len(), expected.len());
    assert!(expected.iter().all(|k| seen.contains_key(k.as_str())));
}

fn string_keys() -> impl Iterator<Item = String> {
    (0..KEYS).map(key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_yields_each_of_100k_keys_once() {
    let server = Server::start(ServerConfig::new()).await.unwrap();
    let client = local(server.port()).build().await.unwrap();
    load_keys(async |pipe| {
        for result in client.pipeline(pipe).await.unwrap() {
            result.unwrap();
        }
    })
    .await;

    let keys: Vec<String> = client
        .scan_iter(
            ScanIterOptions::new()
                .pattern("k:*")
                .count(1000)
                .kind("string"),
        )
        .try_collect()
        .await
        .unwrap();
    assert_each_once(&keys, string_keys());

    // Without filters: everything, the list and other keys included.
    let all = client
        .scan_iter::<String>(ScanIterOptions::new())
        .count()
        .await;
    assert_eq!(all, KEYS + 20);
    let lists: Vec<String> = client
        .scan_iter(ScanIterOptions::new().kind("list"))
        .try_collect()
        .await
        .unwrap();
    assert_each_once(&lists, (0..10).map(|i| format!("k:list:{i}")));

    // The stream is 'static and Send: it can move to another task.
    let stream = client.scan_iter::<bytes::Bytes>(ScanIterOptions::new().pattern("other:*"));
    let n = tokio::spawn(async move { stream.count().await })
        .await
        .unwrap();
    assert_eq!(n, 10);
}

#[tokio::test]
async fn hscan_sscan_and_zscan_walk_one_key() {
    let server = Server::start(ServerConfig::new()).await.unwrap();
    for protocol in [Protocol::Resp2, Protocol::Resp3] {
        let client: Valkey = local(server.port())
            .protocol(protocol)
            .build()
            .await
            .unwrap();
        let (h, s, z) = (
            format!("h:{protocol:?}"),
            format!("s:{protocol:?}"),
            format!("z:{protocol:?}"),
        );
        // Large enough for the hashtable encoding: several pages.
        let mut pipe = Pipeline::new();
        for i in 0..1000 {
            pipe.cmd("HSET").arg(&h).arg(format!("f{i}")).arg(i);
            pipe.cmd("SADD").arg(&s).arg(format!("m{i}"));
            pipe.cmd("ZADD")
                .arg(&z)
                .arg(i as f64 / 2.0)
                .arg(format!("m{i}"));
        }
        client.pipeline(&mut pipe).await.unwrap();

        let fields: Vec<(String, i64)> = client
            .hscan_iter(&h, ScanIterOptions::new().count(50))
            .try_collect()
            .await
            .unwrap();
        let names: Vec<String> = fields.iter().map(|(f, _)| f.clone()).collect();
        assert_each_once(&names, (0..1000).map(|i| format!("f{i}")));
        assert!(fields.iter().all(|(f, v)| f == &format!("f{v}")));

        let members: Vec<String> = client
            .sscan_iter(&s, ScanIterOptions::new().pattern("m1*"))
            .try_collect()
            .await
            .unwrap();
        let expected = (0..1000)
            .map(|i| format!("m{i}"))
            .filter(|m| m.starts_with("m1"));
        assert_each_once(&members, expected);

        let scored: Vec<(String, f64)> = client
            .zscan_iter(&z, ScanIterOptions::new())
            .try_collect()
            .await
            .unwrap();
        assert_eq!(scored.len(), 1000);
        assert!(
            scored
                .iter()
                .all(|(m, score)| m == &format!("m{}", (score * 2.0) as i64))
        );

        // TYPE is for SCAN only; a scan of the wrong type is the server's
        // error; a missing key is empty.
        let err = client
            .hscan_iter::<_, String, String>(&h, ScanIterOptions::new().kind("hash"))
            .try_collect::<Vec<_>>()
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Data);
        let err = client
            .sscan_iter::<_, String>(&h, ScanIterOptions::new())
            .try_collect::<Vec<_>>()
            .await
            .unwrap_err();
        assert_eq!(err.code(), Some("WRONGTYPE"));
        let none = client
            .zscan_iter::<_, String>("missing", ScanIterOptions::new())
            .count()
            .await;
        assert_eq!(none, 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_scan_walks_every_primary_once() {
    let cluster = Cluster::start(ClusterConfig::new(3, 0)).await.unwrap();
    let (host, port) = cluster.seed_addrs()[0].clone();
    let rc = ValkeyCluster::connect(&host, port).await.unwrap();
    load_keys(async |pipe| {
        for result in rc.pipeline(pipe).await.unwrap() {
            result.unwrap();
        }
    })
    .await;
    // Every primary holds a share of the keys.
    for primary in cluster.primaries() {
        let mut conn = primary.connect().await.unwrap();
        let n = conn.request(&Cmd::new("DBSIZE")).await.unwrap();
        assert!(n.as_int().unwrap() > 10_000, "{n:?}");
    }

    let keys: Vec<String> = rc
        .scan_iter(
            ScanIterOptions::new()
                .pattern("k:*")
                .count(1000)
                .kind("string"),
        )
        .try_collect()
        .await
        .unwrap();
    assert_each_once(&keys, string_keys());
    let all = rc
        .scan_iter::<String>(ScanIterOptions::new().count(500))
        .count()
        .await;
    assert_eq!(all, KEYS + 20);

    // One key's scan goes to its slot's owner.
    let mut pipe = Pipeline::new();
    for i in 0..300 {
        pipe.cmd("HSET").arg("{h}").arg(format!("f{i}")).arg(i);
        pipe.cmd("SADD").arg("{s}").arg(i);
        pipe.cmd("ZADD").arg("{z}").arg(i).arg(format!("m{i}"));
    }
    rc.pipeline(&mut pipe).await.unwrap();
    let fields: Vec<(String, i64)> = rc
        .hscan_iter("{h}", ScanIterOptions::new().count(20))
        .try_collect()
        .await
        .unwrap();
    let names: Vec<String> = fields.into_iter().map(|(f, _)| f).collect();
    assert_each_once(&names, (0..300).map(|i| format!("f{i}")));
    let members: Vec<i64> = rc
        .sscan_iter::<_, i64>("{s}", ScanIterOptions::new())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(members.iter().collect::<HashSet<_>>().len(), 300);
    let scored: Vec<(String, f64)> = rc
        .zscan_iter("{z}", ScanIterOptions::new())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(scored.len(), 300);

    // SCAN itself stays refused through request: it walks one node.
    let err = rc
        .request::<valkey_client::Value>(&Cmd::new("SCAN").arg(0))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Cluster);
}
