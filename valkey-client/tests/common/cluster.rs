//! Helpers for the cluster client's tests.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use valkey_client::{Cmd, Connection, Event, ValkeyCluster, ValkeyClusterBuilder};
use valkey_testkit::Cluster;

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
