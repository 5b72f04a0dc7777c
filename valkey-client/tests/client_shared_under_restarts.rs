//! 64 tasks share one client and run 100,000 commands while the server is
//! restarted twice: every reply must reach the task that asked for it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use valkey_client::Commands;
use valkey_client::{Event, ExponentialBackoff, Retry, Valkey};
mod common;

const TASKS: usize = 64;
const PAIRS_PER_TASK: usize = 100_000 / TASKS / 2 + 1;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_reply_reaches_the_wrong_caller_across_restarts() {
    // A restart loses nothing, so each GET must return the task's own
    // last value exactly.
    let mut server = common::durable_server().await;
    let retries = Arc::new(AtomicUsize::new(0));
    let seen = retries.clone();
    let client = Valkey::builder()
        .on_event(move |event| {
            if matches!(event, Event::Retry { .. }) {
                seen.fetch_add(1, Ordering::Relaxed);
            }
        })
        .host("127.0.0.1")
        .port(server.port())
        .retry(Retry::new(ExponentialBackoff::default(), 12))
        .build()
        .await
        .unwrap();
    let commands = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let client = client.clone();
        let commands = commands.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..PAIRS_PER_TASK {
                let key = format!("task:{t}:{}", i % 4);
                let value = format!("{t}:{i}");
                client
                    .set(&key, &value)
                    .await
                    .unwrap_or_else(|e| panic!("task {t} SET {i}: {e}"));
                let got: String = client
                    .get(&key)
                    .await
                    .unwrap_or_else(|e| panic!("task {t} GET {i}: {e}"));
                assert_eq!(got, value, "task {t} received a reply meant for another");
                commands.fetch_add(2, Ordering::Relaxed);
            }
        }));
    }
    for _ in 0..2 {
        // Restart once the load is well under way.
        let target = commands.load(Ordering::Relaxed) + 15_000;
        while commands.load(Ordering::Relaxed) < target
            && started.elapsed() < Duration::from_secs(60)
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        server.restart().await.unwrap();
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert!(commands.load(Ordering::Relaxed) >= 100_000);
    // The restarts really hit the load: commands failed and were retried.
    assert!(retries.load(Ordering::Relaxed) > 0, "no retry happened");
    println!("100k commands with 2 restarts in {:?}", started.elapsed());
}
