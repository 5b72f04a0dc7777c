//! The bound on requests waiting for a connection to open
//! (`max_waiting_for_connection`): while the server cannot be reached,
//! requests past the bound fail at once, unsent, with an error that says
//! why, instead of piling up; the ones within it get the connection when it
//! opens. The cluster client uses the same per-node keeper.

mod common;

use std::time::{Duration, Instant};

use valkey_client::Commands;
use valkey_client::{Delivery, ErrorKind, Valkey};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_past_the_bound_fail_fast_and_the_others_are_served() {
    let (_server, proxy) = common::server_and_proxy().await;
    // Every chunk is held 300 ms: opening the connection (handshake
    // included) takes about a second.
    proxy.set_latency(Duration::from_millis(300));
    let client: Valkey = Valkey::builder()
        .host("127.0.0.1")
        .port(proxy.port())
        .max_waiting_for_connection(4)
        .connect_timeout(Some(Duration::from_secs(5)))
        .build_lazy();
    let started = Instant::now();
    let calls: Vec<_> = (0..10)
        .map(|i| {
            let client = client.clone();
            tokio::spawn(async move {
                let result = client.get::<Option<String>>(format!("k{i}")).await;
                (result, Instant::now())
            })
        })
        .collect();
    let mut refused = 0;
    let mut served = 0;
    for call in calls {
        let (result, at) = call.await.unwrap();
        match result {
            Ok(_) => served += 1,
            Err(err) => {
                assert_eq!(err.kind(), ErrorKind::Connection, "{err}");
                assert_eq!(err.delivery(), Delivery::NotSent, "{err}");
                assert!(
                    err.to_string().contains("max_waiting_for_connection"),
                    "{err}"
                );
                assert!(
                    at - started < Duration::from_millis(200),
                    "refused late: {:?}",
                    at - started
                );
                refused += 1;
            }
        }
    }
    assert_eq!((refused, served), (6, 4));
}
