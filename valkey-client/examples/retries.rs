//! Retries: what the options retry, a retried command seen through events,
//! at most once, and `Retry` around an operation of your own.
//!
//! ```text
//! cargo run --example retries
//! VALKEY_URL=valkey://127.0.0.1:6379/0 cargo run --example retries
//! ```

#[path = "support/mod.rs"]
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use support::check;
use valkey_client::{
    Cmd, Commands, Error, ErrorKind, Event, ExponentialBackoff, NoBackoff, Retry, Valkey,
};

#[tokio::main]
async fn main() -> support::Result {
    let target = support::standalone().await?;

    // 1. What each combination retries (docs/retries.md has the table):
    // `retry_on_timeout` adds Timeout to the Retry's own kinds; alone, it
    // means Retry(NoBackoff, 1) on Timeout only.
    let retry = Retry::new(ExponentialBackoff::default(), 3);
    println!("Retry::new retries {:?}", retry.supported_errors());
    let alone = Valkey::builder()
        .url(&target.url)?
        .retry_on_timeout(true)
        .build_lazy();
    let alone = alone.effective_retry().expect("a retry");
    println!("retry_on_timeout alone: {alone:?}");
    check(
        !alone.is_supported(ErrorKind::Connection),
        "alone: Timeout only",
    )?;
    let both = Valkey::builder().url(&target.url)?.retry(retry.clone());
    let both = both.retry_on_timeout(true).build_lazy();
    let both = both.effective_retry().expect("a retry");
    check(
        both.is_supported(ErrorKind::Connection),
        "with a Retry: its kinds too",
    )?;

    // 2. A server that stops answering for a second (CLIENT PAUSE): each
    // attempt of the GET times out after the response timeout, and the GET
    // (safe to repeat) is retried with the backoff until the server answers.
    // A command that is not safe to repeat (INCR) is not sent again after
    // a lost reply (the testkit example shows one), unless the call or the
    // client opts in with `retry_non_idempotent(true)`.
    let retries = Arc::new(AtomicU32::new(0));
    let seen = retries.clone();
    let client = Valkey::builder()
        .url(&target.url)?
        .retry(Retry::new(ExponentialBackoff::default(), 10))
        .response_timeout(Some(Duration::from_millis(100))) // per attempt
        .request_timeout(Some(Duration::from_secs(10))) // all attempts together
        .on_event(move |event| {
            if let Event::Retry {
                attempt,
                wait,
                error,
                ..
            } = event
            {
                println!("  retry {attempt} in {wait:?} after: {error}");
                seen.fetch_add(1, Ordering::Relaxed);
            }
        })
        .build()
        .await?;
    client.set("retries:key", "value").await?;
    let admin = Valkey::from_url(&target.url).await?;
    let _: () = admin
        .send(Cmd::new("CLIENT").arg("PAUSE").arg(1000))
        .await?;
    println!("server paused for 1 s; GET with a 100 ms response timeout:");
    let value: String = client.get("retries:key").await?;
    println!("GET -> {value:?}");
    check(
        value == "value",
        "the GET succeeded once the server answered",
    )?;
    check(
        retries.load(Ordering::Relaxed) >= 1,
        "its retries were reported",
    )?;

    // 3. `Retry` around an operation of your own: it fails twice with a
    // Connection error, then succeeds; `fail` runs after each failure.
    let attempts = AtomicU32::new(0);
    let failures = AtomicU32::new(0);
    let op = || async {
        match attempts.fetch_add(1, Ordering::Relaxed) {
            0 | 1 => Err(Error::new(ErrorKind::Connection, "not yet")),
            n => Ok(n + 1),
        }
    };
    let fail = |_: &Error| {
        failures.fetch_add(1, Ordering::Relaxed);
        async { Ok(()) }
    };
    let result = Retry::new(NoBackoff, 3).call_with_retry(op, fail).await?;
    println!("own operation: succeeded on attempt {result}");
    check(
        result == 3 && failures.into_inner() == 2,
        "3 attempts, 2 failures",
    )?;

    println!("retries: all checks passed");
    Ok(())
}
