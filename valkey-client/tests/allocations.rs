//! The hot path allocates nothing per command beyond the reply itself,
//! counted with an instrumented global allocator around real round trips to
//! a valkey-server and a cluster: neither `request(&Cmd)` nor a typed method (`Commands`)
//! allocates. A typed call's first attempt is a named future held inline;
//! only a call with a deadline, a blocking command or a retry boxes.

use std::alloc::System;

use bytes::Bytes;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use valkey_client::Commands;
use valkey_client::{Cmd, ExponentialBackoff, Retry, Valkey};
use valkey_testkit::{Server, ServerConfig};

mod common;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const ROUNDS: usize = 2_000;

/// Allocations per command for `ROUNDS` runs of `op` after a warm-up.
async fn allocations_per_command<F, Fut>(mut op: F) -> f64
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for _ in 0..200 {
        op().await;
    }
    let region = Region::new(GLOBAL);
    for _ in 0..ROUNDS {
        op().await;
    }
    region.change().allocations as f64 / ROUNDS as f64
}

#[test]
fn get_and_set_allocate_nothing_per_command() {
    // One thread, so the count is ours alone.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let server = Server::start(ServerConfig::new()).await.unwrap();
        let client = Valkey::builder()
            .host("127.0.0.1")
            .port(server.port())
            .retry(Retry::new(ExponentialBackoff::default(), 3))
            .build()
            .await
            .unwrap();
        let value = Bytes::from(vec![b'v'; 64]);
        client.set("key", &value).await.unwrap();

        let get = allocations_per_command(|| async {
            let got: Option<Bytes> = client.get("key").await.unwrap();
            assert_eq!(got.as_ref().map(|b| b.len()), Some(64));
        })
        .await;
        let set = allocations_per_command(|| async {
            client.set("key", &value).await.unwrap();
        })
        .await;
        let raw_set = allocations_per_command(|| async {
            let cmd = Cmd::new("SET").arg("key").arg(&value);
            let _: () = client.request(&cmd).await.unwrap();
        })
        .await;
        let raw = allocations_per_command(|| async {
            let cmd = Cmd::new("GET").arg("key");
            let _: Option<Bytes> = client.request(&cmd).await.unwrap();
        })
        .await;
        println!(
            "allocations per command: typed GET {get:.3}, typed SET {set:.3}, raw GET {raw:.3}, raw SET {raw_set:.3}"
        );
        // Amortised buffer growth only: far below one allocation a command.
        for (name, per) in [
            ("raw GET", raw),
            ("raw SET", raw_set),
            ("typed GET", get),
            ("typed SET", set),
        ] {
            assert!(per < 0.05, "{name}: {per} allocations per command");
        }
        // With a deadline the call takes the general path: its future is
        // boxed once.
        let with_deadline = allocations_per_command(|| async {
            let got: Option<Bytes> = client
                .get("key")
                .timeout(std::time::Duration::from_secs(5))
                .await
                .unwrap();
            assert_eq!(got.as_ref().map(|b| b.len()), Some(64));
        })
        .await;
        assert!(
            (0.95..1.05).contains(&with_deadline),
            "typed GET with a deadline: {with_deadline} allocations per command"
        );
        drop(server);
        cluster_typed_calls_allocate_nothing_per_command().await;
    });
}

/// Typed calls on a cluster: the first attempt unboxed there too. Run after
/// the standalone counts, in the same test: the counting allocator sees
/// every thread, so the two must not overlap.
async fn cluster_typed_calls_allocate_nothing_per_command() {
    let (_cluster, client) = common::cluster::three_primaries().await;
    let value = Bytes::from(vec![b'v'; 64]);
    client.set("key", &value).await.unwrap();
    let get = allocations_per_command(|| async {
        let got: Option<Bytes> = client.get("key").await.unwrap();
        assert_eq!(got.as_ref().map(|b| b.len()), Some(64));
    })
    .await;
    let set = allocations_per_command(|| async {
        client.set("key", &value).await.unwrap();
    })
    .await;
    println!("cluster allocations per command: typed GET {get:.3}, typed SET {set:.3}");
    for (name, per) in [("cluster typed GET", get), ("cluster typed SET", set)] {
        assert!(per < 0.05, "{name}: {per} allocations per command");
    }
}
