//! `cluster::key_slot` agrees with the server: for 2,000 keys of every shape
//! (plain, with hash tags, empty or unbalanced braces, binary bytes), the
//! slot we compute is the one `CLUSTER KEYSLOT` answers on a real cluster
//! node.

use valkey_client::cluster::key_slot;
use valkey_client::{Cmd, Connection};
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
