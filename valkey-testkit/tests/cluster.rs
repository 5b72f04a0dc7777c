//! Cluster startup, node control and teardown.

use std::path::Path;
use std::time::{Duration, Instant};

use valkey_testkit::{Cluster, ClusterConfig, SLOT_COUNT, info_field};

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_by_one_cluster_starts_agrees_and_is_torn_down() {
    let started = Instant::now();
    let cluster = Cluster::start(ClusterConfig::default()).await.unwrap();
    let elapsed = started.elapsed();
    println!("3x1 cluster ready in {elapsed:?}");
    assert!(
        elapsed < Duration::from_secs(15),
        "cluster took {elapsed:?}"
    );

    assert_eq!(cluster.nodes().len(), 6);
    assert_eq!(cluster.primaries().len(), 3);
    assert_eq!(cluster.replicas().len(), 3);
    let map = cluster.slot_map().await.unwrap();
    assert_eq!(&map, cluster.initial_slot_map());
    assert_eq!(map.len(), 3);
    assert_eq!(
        map.iter()
            .map(|r| u32::from(r.end - r.start) + 1)
            .sum::<u32>(),
        u32::from(SLOT_COUNT)
    );
    for (i, primary) in cluster.primaries().iter().enumerate() {
        let replicas: Vec<u16> = cluster.replicas_of(i).iter().map(|r| r.port()).collect();
        let range = map.iter().find(|r| r.primary == primary.port()).unwrap();
        assert_eq!(range.replicas, replicas);
        assert_eq!(cluster.slot_owner(range.start), primary.port());
        assert_eq!(cluster.slot_owner(range.end), primary.port());
    }
    // Every node, replicas included, agrees (asked directly, not through the kit).
    for node in cluster.nodes() {
        let info = node.info("replication").await.unwrap();
        let role = info_field(&info, "role").unwrap().to_owned();
        let is_replica = cluster.replicas().iter().any(|r| r.port() == node.port());
        assert_eq!(
            role == "slave",
            is_replica,
            "node {} has role {role}",
            node.port()
        );
        let mut conn = node.connect().await.unwrap();
        let cluster_info = conn
            .request(&valkey_client::Cmd::new("CLUSTER").arg("INFO"))
            .await
            .unwrap();
        let text = cluster_info.as_str().unwrap();
        assert_eq!(info_field(text, "cluster_state"), Some("ok"));
        assert_eq!(info_field(text, "cluster_known_nodes"), Some("6"));
    }
    assert_eq!(cluster.seed_urls().len(), 6);
    assert_eq!(
        cluster.seed_addrs()[0],
        ("127.0.0.1".to_owned(), cluster.node(0).port())
    );

    let pids: Vec<u32> = cluster.nodes().iter().map(|n| n.pid().unwrap()).collect();
    let ports: Vec<u16> = cluster.nodes().iter().map(|n| n.port()).collect();
    drop(cluster);
    for pid in pids {
        assert!(!alive(pid), "node process {pid} survived drop");
    }
    for port in ports {
        assert!(
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_err(),
            "port {port} still open"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_restart_rejoins() {
    let mut cluster = Cluster::start(ClusterConfig::new(3, 0)).await.unwrap();
    assert!(cluster.replicas().is_empty());
    let port = cluster.node(2).port();
    cluster.kill_node(2);
    assert!(cluster.node(2).pid().is_none());
    cluster.restart_node(2).await.unwrap();
    assert_eq!(cluster.node(2).port(), port);
    cluster
        .wait_until_consistent(Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(
        &cluster.slot_map().await.unwrap(),
        cluster.initial_slot_map()
    );
    cluster.stop_node(1).await.unwrap();
    assert!(cluster.node(1).pid().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_protected_cluster_with_one_shard() {
    let mut config = ClusterConfig::new(1, 1);
    config.server = valkey_testkit::ServerConfig::new().password("pw");
    let cluster = Cluster::start(config).await.unwrap();
    let map = cluster.slot_map().await.unwrap();
    assert_eq!(map.len(), 1);
    assert_eq!((map[0].start, map[0].end), (0, SLOT_COUNT - 1));
    assert_eq!(map[0].replicas, vec![cluster.replicas_of(0)[0].port()]);
    // The replica authenticated to its primary with masterauth.
    let info = cluster.replicas()[0].info("replication").await.unwrap();
    assert_eq!(info_field(&info, "master_link_status"), Some("up"));
}
