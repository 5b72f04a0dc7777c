//! Pipelines (many commands, one write), transactions (`MULTI ... EXEC`)
//! and optimistic locking with `watch`.
//!
//! ```text
//! cargo run --example pipelines_and_transactions
//! VALKEY_URL=valkey://127.0.0.1:6379/0 cargo run --example pipelines_and_transactions
//! ```

#[path = "support/mod.rs"]
mod support;

use std::sync::atomic::{AtomicU32, Ordering};

use support::check;
use valkey_client::{Commands, ErrorKind, Pipeline, Transaction, Valkey};

#[tokio::main]
async fn main() -> support::Result {
    let target = support::standalone().await?;
    let client = Valkey::from_url(&target.url).await?;
    client
        .del(["pt:a", "pt:list", "pt:balance", "pt:audit"])
        .await?;

    // A pipeline of typed calls; its replies read as a tuple.
    let mut pipe = Pipeline::new();
    pipe.set("pt:a", 1)
        .incr("pt:a")
        .rpush("pt:list", ["x", "y"])
        .get("pt:a");
    let ((), n, len, a): ((), i64, i64, String) = client.pipeline_into(&mut pipe).await?;
    println!("pipeline -> n = {n}, list length = {len}, a = {a:?}");
    check(
        (n, len, a.as_str()) == (2, 2, "2"),
        "pipeline replies in order",
    )?;

    // `pipeline` gives one result per command: a failing command does not
    // hide the others' replies.
    let mut pipe = Pipeline::new();
    pipe.cmd("INCR").arg("pt:a");
    pipe.cmd("INCR").arg("pt:list"); // WRONGTYPE
    pipe.cmd("LLEN").arg("pt:list");
    let results = client.pipeline(&mut pipe).await?;
    for (i, result) in results.iter().enumerate() {
        println!("  command {i}: {result:?}");
    }
    let wrong = results[1].as_ref().unwrap_err();
    check(
        wrong.code() == Some("WRONGTYPE"),
        "the 2nd command failed alone",
    )?;
    check(
        results[2].as_ref().ok().and_then(|v| v.as_int()) == Some(2),
        "the 3rd ran",
    )?;

    // A transaction: MULTI, the commands and EXEC in one write.
    let mut tx = Transaction::new();
    tx.incrby("pt:balance", 100).incr("pt:audit");
    let (balance, audit): (i64, i64) = client.exec_into(&mut tx).await?;
    println!("transaction -> balance = {balance}, audit = {audit}");
    check(
        (balance, audit) == (100, 1),
        "both commands ran, atomically",
    )?;

    // Optimistic locking: `watch` reads on a dedicated connection, and runs
    // the closure again when a watched key changed before EXEC. Here
    // another client changes the balance during the first run.
    let runs = AtomicU32::new(0);
    let other = client.clone();
    let results = client
        .watch(["pt:balance"], async |w| {
            let balance: i64 = w.get("pt:balance").await?;
            if runs.fetch_add(1, Ordering::Relaxed) == 0 {
                other.incrby("pt:balance", 5).await?; // a concurrent write
            }
            let mut tx = Transaction::new();
            tx.set("pt:balance", balance * 2);
            Ok(Some(tx))
        })
        .await?;
    let balance: i64 = client.get("pt:balance").await?;
    println!(
        "watch -> ran {} times, balance = {balance}",
        runs.load(Ordering::Relaxed)
    );
    check(
        results.is_some() && balance == 210,
        "doubled the balance after the conflict",
    )?;
    check(
        runs.into_inner() == 2,
        "the conflict made the closure run again",
    )?;

    // Commands that change the connection's state are refused on the
    // shared connection, with a message naming the API to use.
    let err = client
        .send::<()>(valkey_client::Cmd::new("MULTI"))
        .await
        .unwrap_err();
    println!("MULTI on the shared connection -> {err}");
    check(err.kind() == ErrorKind::StatefulCommand, "MULTI refused")?;

    println!("pipelines_and_transactions: all checks passed");
    Ok(())
}
