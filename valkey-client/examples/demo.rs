//! The main demonstration: the documented retry contract, live.
//!
//! Starts a throwaway local valkey-server through `valkey-testkit` (installing
//! Valkey 9.1.2 from PyPI into a cache on first use), builds a client with
//! the retry configuration of the documentation, and keeps a loop of
//! commands running while it restarts the server twice. Every retry is
//! printed as it happens: attempt, wait and error kind.
//!
//! With `VALKEY_URL` set it runs against that server instead, without
//! restarting anything.
//!
//! ```text
//! cargo run --example demo
//! VALKEY_URL=valkey://127.0.0.1:6379/0 cargo run --example demo
//! ```

use std::time::{Duration, Instant};

use valkey_client::Commands;
use valkey_client::{Cmd, ErrorKind, Event, ExponentialBackoff, Retry, Valkey, ValkeyBuilder};
use valkey_testkit::{Server, ServerConfig};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (builder, mut server) = match std::env::var("VALKEY_URL") {
        Ok(url) => (Valkey::builder().url(&url)?, None),
        Err(_) => {
            println!("VALKEY_URL is not set: starting a local valkey-server");
            let server = Server::start(ServerConfig::new()).await?;
            println!("valkey-server is listening on {}", server.url());
            let builder = Valkey::builder().host("127.0.0.1").port(server.port());
            (builder, Some(server))
        }
    };

    // The documented configuration: 3 retries with exponential backoff, on
    // BusyLoading, Connection and Timeout errors. Three retries wait 16, 32
    // and 64 ms; a restart takes longer, so this demo allows 10 retries
    // (16 ms ... 512 ms, about 3 s in all).
    let retry = Retry::new(ExponentialBackoff::default(), 10);
    let client = with_printed_events(builder)
        .retry(retry)
        .retry_on_error([
            ErrorKind::BusyLoading,
            ErrorKind::Connection,
            ErrorKind::Timeout,
        ])
        .response_timeout(Some(Duration::from_secs(1)))
        .build()
        .await?;
    println!("effective retry: {:?}\n", client.effective_retry());

    let started = Instant::now();
    let total = 300u32;
    for i in 1..=total {
        let key = format!("demo:{}", i % 10);
        client.set(&key, i).await?;
        let back: u32 = client.get(&key).await?;
        assert_eq!(back, i);
        let hits = client.incr("demo:hits").await?;
        if i % 50 == 0 {
            println!(
                "[{:>5} ms] command {i}/{total} ok (demo:hits = {hits})",
                started.elapsed().as_millis()
            );
        }
        if let Some(server) = server.as_mut()
            && (i == 100 || i == 200)
        {
            println!(
                "[{:>5} ms] restarting valkey-server (kill, then start again)",
                started.elapsed().as_millis()
            );
            server.kill();
            let restart_at = Instant::now();
            // The loop goes on while the server is down; its commands
            // fail, are retried, and succeed once the server is back.
            let restarter = async {
                tokio::time::sleep(Duration::from_millis(300)).await;
                server.restart().await
            };
            let work = async {
                let v: Option<String> = client.get("demo:1").await?;
                Ok::<_, valkey_client::Error>(v)
            };
            let (restarted, read) = tokio::join!(restarter, work);
            restarted?;
            println!(
                "[{:>5} ms] read across the restart: demo:1 = {:?} ({} ms after the kill; the kill lost unsaved data)",
                started.elapsed().as_millis(),
                read?,
                restart_at.elapsed().as_millis()
            );
        }
    }
    // A server error reply keeps its code and message and is not retried.
    let err = client
        .request::<i64>(&Cmd::new("INCR").arg("demo:1").arg("extra"))
        .await
        .unwrap_err();
    println!(
        "\nINCR with a wrong argument count -> {err} (kind {:?}, code {:?})",
        err.kind(),
        err.code()
    );
    shared_connection(&client).await?;
    println!(
        "done: {total} rounds of SET/GET/INCR in {:?}",
        started.elapsed()
    );
    Ok(())
}

/// What the shared connection carries: a blocking command runs on a
/// dedicated connection while GETs go on, and a command that would change
/// the connection under every caller is refused with a pointer to the API
/// to use instead.
async fn shared_connection(client: &Valkey) -> Result<(), Box<dyn std::error::Error>> {
    let blocking = client.clone();
    let pop = tokio::spawn(async move {
        let started = Instant::now();
        let popped: Option<Vec<String>> = blocking
            .request(&Cmd::new("BLPOP").arg("demo:queue").arg(1))
            .await?;
        Ok::<_, valkey_client::Error>((popped, started.elapsed()))
    });
    let started = Instant::now();
    let mut gets = 0;
    while !pop.is_finished() && started.elapsed() < Duration::from_secs(3) {
        let _: Option<String> = client.get("demo:1").await?;
        gets += 1;
    }
    let (popped, took) = pop.await??;
    println!(
        "\nBLPOP demo:queue 1 -> {popped:?} after {} ms, on its own connection; {gets} GETs ran meanwhile",
        took.as_millis()
    );
    let err = client.request::<()>(&Cmd::new("MULTI")).await.unwrap_err();
    println!("MULTI on the shared connection -> {err}");
    Ok(())
}

/// Prints every retry, give-up and reconnect as it happens.
fn with_printed_events(builder: ValkeyBuilder) -> ValkeyBuilder {
    builder.on_event(|event| match event {
        Event::Retry {
            command,
            attempt,
            wait,
            error,
        } => println!(
            "  retry: {command} attempt {attempt}, waiting {} ms, after {:?}: {error}",
            wait.as_millis(),
            error.kind()
        ),
        Event::GaveUp {
            command,
            attempts,
            reason,
            error,
        } => {
            println!("  gave up: {command} after {attempts} attempts ({reason:?}): {error}")
        }
        Event::Reconnecting {
            attempt,
            wait,
            error,
            ..
        } => println!(
            "  reconnecting: attempt {attempt} in {} ms ({:?})",
            wait.as_millis(),
            error.kind()
        ),
        Event::Reconnected {
            failed_attempts, ..
        } => {
            println!("  reconnected after {failed_attempts} failed attempts")
        }
        _ => {}
    })
}
