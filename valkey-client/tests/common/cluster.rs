//! Helpers for the cluster client's tests.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use std::time::Instant;

use valkey_client::Commands;
use valkey_client::{Cmd, Connection, Event, ValkeyCluster, ValkeyClusterBuilder, Value};
use valkey_testkit::{Cluster, Server};

/// A builder seeded with the cluster's first node, and a counter of the
/// events `counted` picks.
pub fn counting(
    cluster: &Cluster,
    counted: fn(&Event<'_>) -> bool,
) -> (ValkeyClusterBuilder, Arc<AtomicUsize>) {
    let (host, port) = cluster.seed_addrs()[0].clone();
    let count = Arc::new(AtomicUsize::new(0));
    let counter = count.clone();
    let builder = ValkeyCluster::builder()
        .seed(host, port)
        .on_event(move |event| {
            if counted(event) {
                counter.fetch_add(1, Ordering::Relaxed);
            }
        });
    (builder, count)
}

/// Reads `key` until it has a value (replicas lag behind), up to 2 s.
pub async fn read_until_present(rc: &ValkeyCluster, key: &str) -> Option<String> {
    for _ in 0..100 {
        let value = rc.get::<Option<String>>(key).await.unwrap();
        if value.is_some() {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

/// Whether the server behind `conn` has run a GET.
pub async fn served_a_get(conn: &mut Connection) -> bool {
    let stats = conn
        .request(&Cmd::new("INFO").arg("commandstats"))
        .await
        .unwrap();
    String::from_utf8_lossy(stats.as_bytes().unwrap()).contains("cmdstat_get:")
}

/// Makes `node` announce `port` to clients (CLUSTER SHARDS/SLOTS, MOVED)
/// instead of its own, keeping its cluster bus where it is: for a TLS
/// terminator or a fault proxy in front of it.
pub async fn announce_port(node: &Server, port: u16) {
    let mut admin = node.connect().await.unwrap();
    let reply = admin
        .request(&Cmd::new("CONFIG").arg("GET").arg("cluster-port"))
        .await
        .unwrap();
    let configured = match &reply {
        Value::Map(kv) => kv.first().map(|(_, v)| v),
        other => other.as_slice().and_then(|kv| kv.get(1)),
    }
    .and_then(|v| v.as_str()?.parse::<u32>().ok())
    .filter(|&p| p != 0);
    let bus = configured.unwrap_or(u32::from(node.port()) + 10000);
    for (key, value) in [
        ("cluster-announce-bus-port", bus.to_string()),
        ("cluster-announce-port", port.to_string()),
    ] {
        admin
            .request(&Cmd::new("CONFIG").arg("SET").arg(key).arg(value))
            .await
            .unwrap();
    }
}

/// Waits until every primary reports each slot range's primary at one of
/// `ports` (the announced ones), up to 20 s.
pub async fn wait_announced(cluster: &Cluster, ports: &[u16]) {
    let deadline = Instant::now() + Duration::from_secs(20);
    for node in cluster.primaries() {
        let mut admin = node.connect().await.unwrap();
        loop {
            let slots = admin
                .request(&Cmd::new("CLUSTER").arg("SLOTS"))
                .await
                .unwrap();
            let seen: Vec<u16> = slots
                .as_slice()
                .unwrap_or_default()
                .iter()
                .filter_map(|range| range.as_slice()?.get(2)?.as_slice()?.get(1)?.as_int())
                .filter_map(|p| u16::try_from(p).ok())
                .collect();
            if !seen.is_empty() && seen.iter().all(|p| ports.contains(p)) {
                break;
            }
            assert!(Instant::now() < deadline, "announced ports: {seen:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A cluster of 3 primaries without replicas, and a client of it with the
/// default settings.
pub async fn three_primaries() -> (Cluster, ValkeyCluster) {
    let cluster = Cluster::start(valkey_testkit::ClusterConfig::new(3, 0))
        .await
        .expect("start a cluster of 3 primaries");
    let (host, port) = cluster.seed_addrs()[0].clone();
    let client = ValkeyCluster::builder()
        .seed(host, port)
        .build()
        .await
        .expect("a client of the cluster");
    (cluster, client)
}
