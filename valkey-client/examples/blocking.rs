//! The blocking API: the same clients and typed methods without async code
//! (each client drives a small private runtime), shared across threads.
//!
//! ```text
//! cargo run --example blocking
//! VALKEY_URL=valkey://127.0.0.1:6379/0 cargo run --example blocking
//! ```

#[path = "support/mod.rs"]
mod support;

use std::thread;
use std::time::Duration;

use support::check;
use valkey_client::blocking::Valkey;
use valkey_client::{Commands, ExponentialBackoff, Pipeline, Retry};

fn main() -> support::Result {
    let target = support::standalone_blocking()?;

    // Every option of the async builder applies.
    let client = Valkey::build(
        valkey_client::Valkey::builder()
            .url(&target.url)?
            .retry(Retry::new(ExponentialBackoff::default(), 3))
            .request_timeout(Some(Duration::from_secs(5))),
    )?;
    client.del(["bl:greeting", "bl:counter", "bl:jobs"])?;

    // Typed methods return the result directly.
    client.set("bl:greeting", "hello")?;
    let greeting: Option<String> = client.get("bl:greeting")?;
    println!("GET bl:greeting -> {greeting:?}");
    check(greeting.as_deref() == Some("hello"), "SET then GET")?;

    // Clones share the connection; use them from any thread.
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let client = client.clone();
            thread::spawn(move || -> valkey_client::Result<()> {
                for _ in 0..25 {
                    client.incr("bl:counter")?;
                }
                Ok(())
            })
        })
        .collect();
    for worker in workers {
        worker.join().expect("worker thread")?;
    }
    let counter: i64 = client.get("bl:counter")?;
    println!("4 threads x 25 INCR -> {counter}");
    check(counter == 100, "every INCR counted once")?;

    // A blocking command waits on a dedicated connection: BLPOP here gets
    // the job another thread pushes a moment later.
    let producer = {
        let client = client.clone();
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(100));
            client.rpush("bl:jobs", ["job 1"])
        })
    };
    let popped: Option<(String, String)> = client.blpop(["bl:jobs"], 5)?;
    producer.join().expect("producer thread")?;
    println!("BLPOP bl:jobs -> {popped:?}");
    check(
        popped.is_some_and(|(_, job)| job == "job 1"),
        "BLPOP got the job",
    )?;

    // Pipelines too.
    let mut pipe = Pipeline::new();
    pipe.incr("bl:counter").get("bl:greeting");
    let results = client.pipeline(&mut pipe)?;
    check(
        results.len() == 2 && results.iter().all(|r| r.is_ok()),
        "a pipeline",
    )?;

    println!("blocking: all checks passed");
    Ok(())
}
