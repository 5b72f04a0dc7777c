//! The cluster rows: real clusters from the test kit (3 primaries with a
//! replica each, cluster-node-timeout 2 s) under the workload of `harness`.

use std::time::{Duration, Instant};

use valkey_client::{Cmd, ValkeyCluster, ValkeyClusterBuilder};
use valkey_testkit::{Cluster, ClusterConfig, FaultProxy};

use crate::common::cluster::{announce_port, wait_announced};
use crate::harness::{self, Client, Row};

const DEADLINE: Duration = Duration::from_secs(2);
const RESPONSE_TIMEOUT: Duration = Duration::from_millis(300);
const MAX_OPS: usize = 5000;
/// Replication is asynchronous: writes acknowledged this long before a
/// primary is lost may be lost with it, by the server's design.
const REPLICATION_WINDOW: Duration = Duration::from_millis(500);

fn builder(seed: u16) -> ValkeyClusterBuilder {
    ValkeyCluster::builder()
        .seed("127.0.0.1", seed)
        .response_timeout(Some(RESPONSE_TIMEOUT))
        .request_timeout(Some(DEADLINE))
}

async fn checker(cluster: &Cluster) -> Client {
    let seed = cluster.primaries()[1].port();
    Client::Cluster(builder(seed).request_timeout(None).build().await.unwrap())
}

async fn durable(primaries: usize, replicas: usize) -> Cluster {
    Cluster::start(
        ClusterConfig::new(primaries, replicas)
            .config("appendonly", "yes")
            .config("appendfsync", "always"),
    )
    .await
    .unwrap()
}

/// Runs the workload for 300 ms, then `fault`, then 1 s more, and checks.
/// `fault` returns the window in which acknowledged writes may be lost by
/// the server's design, if any.
async fn scenario<F, Fut>(cluster: &Cluster, prefix: &str, name: &str, fault: F) -> Row
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Option<(Instant, Instant)>>,
{
    let seed = cluster.primaries()[1].port();
    let client = Client::Cluster(builder(seed).build().await.unwrap());
    let load = harness::start(&client, prefix, MAX_OPS);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let at = Instant::now();
    let lossy = fault().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let checker = checker(cluster).await;
    harness::finish(name, load, &checker, prefix, Some(DEADLINE), at, lossy).await
}

pub async fn rows() -> Vec<Row> {
    let mut rows = Vec::new();

    for freeze in [false, true] {
        let mut cluster = durable(3, 1).await;
        let name = if freeze {
            "primary frozen (SIGSTOP) until its replica is promoted"
        } else {
            "primary killed (SIGKILL)"
        };
        let prefix = if freeze { "frozen" } else { "killed" };
        rows.push(run_loss(&mut cluster, prefix, name, freeze).await);
        if freeze {
            cluster.node(0).thaw().unwrap();
        }
    }

    // Planned changes: no acknowledged write may be lost and no call fail.
    for (prefix, name) in [
        ("failover", "CLUSTER FAILOVER on a replica"),
        ("legacy", "legacy migration of 1,024 slots"),
        ("atomic", "atomic migration of 5,000 slots"),
    ] {
        let cluster = durable(3, 1).await;
        let row = scenario(&cluster, prefix, name, || async {
            let limit = Duration::from_secs(60);
            match prefix {
                "failover" => {
                    let replica = cluster.primaries().len();
                    cluster.manual_failover(replica, limit).await.unwrap();
                }
                "legacy" => {
                    cluster
                        .migrate_slots_legacy(0..=1023, 0, 1, limit)
                        .await
                        .unwrap();
                }
                _ => {
                    cluster
                        .migrate_slots_atomic(0..=4999, 0, 2, limit)
                        .await
                        .unwrap();
                }
            }
            None
        })
        .await;
        rows.push(row);
    }

    {
        let cluster = durable(3, 0).await;
        let row = scenario(
            &cluster,
            "forget",
            "a primary emptied, then removed with CLUSTER FORGET",
            || async {
                let port = cluster.primaries()[2].port();
                for range in cluster
                    .initial_slot_map()
                    .iter()
                    .filter(|r| r.primary == port)
                {
                    cluster
                        .migrate_slots_atomic(
                            range.start..=range.end,
                            2,
                            1,
                            Duration::from_secs(60),
                        )
                        .await
                        .unwrap();
                }
                let gone = cluster.node_id(2).await.unwrap();
                let mut removed = cluster.node(2).connect().await.unwrap();
                removed
                    .request(&Cmd::new("CLUSTER").arg("RESET").arg("HARD"))
                    .await
                    .unwrap();
                for node in &cluster.primaries()[..2] {
                    let mut admin = node.connect().await.unwrap();
                    admin
                        .request(&Cmd::new("CLUSTER").arg("FORGET").arg(&gone))
                        .await
                        .unwrap();
                }
                None
            },
        )
        .await;
        rows.push(row);
    }

    {
        let mut cluster = durable(3, 1).await;
        let row = run_restart_all(&mut cluster).await;
        rows.push(row);
    }

    {
        let cluster = durable(3, 0).await;
        let node = &cluster.primaries()[0];
        let proxy = FaultProxy::start(node.port()).await.unwrap();
        announce_port(node, proxy.port()).await;
        let mut ports: Vec<u16> = cluster.primaries()[1..].iter().map(|n| n.port()).collect();
        ports.push(proxy.port());
        wait_announced(&cluster, &ports).await;
        let row = scenario(
            &cluster,
            "partition",
            "one node cut off from the client for 2 s (black hole)",
            || async {
                proxy.black_hole(true);
                tokio::time::sleep(Duration::from_secs(2)).await;
                proxy.black_hole(false);
                tokio::time::sleep(Duration::from_millis(1500)).await;
                None
            },
        )
        .await;
        rows.push(row);
    }
    rows
}

/// Primary 0 killed or frozen under load, until its replica is promoted.
async fn run_loss(cluster: &mut Cluster, prefix: &str, name: &str, freeze: bool) -> Row {
    let seed = cluster.primaries()[1].port();
    let client = Client::Cluster(builder(seed).build().await.unwrap());
    let load = harness::start(&client, prefix, MAX_OPS);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let at = Instant::now();
    if freeze {
        cluster.node(0).freeze().unwrap();
    } else {
        cluster.kill_node(0);
    }
    cluster
        .wait_for_failover(0, Duration::from_secs(20))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let checker = checker(cluster).await;
    let mut row = harness::finish(
        name,
        load,
        &checker,
        prefix,
        Some(DEADLINE),
        at,
        Some((at - REPLICATION_WINDOW, at)),
    )
    .await;
    row.note
        .push_str("writes acknowledged in the last 500 ms before the fault not counted; ");
    row
}

/// Every node killed and restarted on its port (AOF, fsync always).
async fn run_restart_all(cluster: &mut Cluster) -> Row {
    let seed = cluster.primaries()[1].port();
    let client = Client::Cluster(builder(seed).build().await.unwrap());
    let load = harness::start(&client, "restart", MAX_OPS);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let at = Instant::now();
    for i in 0..cluster.nodes().len() {
        cluster.kill_node(i);
    }
    for i in 0..cluster.nodes().len() {
        cluster.restart_node(i).await.unwrap();
    }
    cluster
        .wait_until_consistent(Duration::from_secs(30))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let checker = checker(cluster).await;
    harness::finish(
        "every node killed and restarted (AOF always)",
        load,
        &checker,
        "restart",
        Some(DEADLINE),
        at,
        None,
    )
    .await
}
