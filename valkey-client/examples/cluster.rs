//! The cluster client: routing by slot, multi-key commands split by slot,
//! keyless commands fanned out, pipelines, one-slot transactions, scans.
//!
//! ```text
//! cargo run --example cluster
//! VALKEY_CLUSTER_URL=valkey://127.0.0.1:7000,valkey://127.0.0.1:7001 cargo run --example cluster
//! ```

#[path = "support/mod.rs"]
mod support;

use futures_util::TryStreamExt;
use support::check;
use valkey_client::cluster::key_slot;
use valkey_client::{
    Cmd, Commands, ExponentialBackoff, Pipeline, Retry, ScanIterOptions, Target, Transaction,
    ValkeyCluster,
};

#[tokio::main]
async fn main() -> support::Result {
    let target = support::cluster().await?;

    let rc = ValkeyCluster::builder()
        .seed_urls(&target.urls)?
        .retry(Retry::new(ExponentialBackoff::default(), 3)) // per node
        .cluster_error_retry_attempts(2) // the whole command, after a topology read
        .build()
        .await?;
    let keys = [
        "example:a",
        "example:b",
        "example:c",
        "{example:user}.name",
        "{example:user}.visits",
    ];
    rc.del(keys).await?; // split by slot, sent in parallel

    // A keyed command goes to the primary that serves its slot.
    rc.set("example:a", "1").await?;
    let slot = key_slot(b"example:a");
    println!(
        "example:a is in slot {slot}, served by {:?}",
        rc.slot_owner(slot)
    );
    check(rc.slot_owner(slot).is_some(), "the slot has an owner")?;

    // MSET and MGET over several slots: split, run in parallel, merged in
    // key order (not atomic across slots).
    rc.mset([("example:b", "2"), ("example:c", "3")]).await?;
    let values: Vec<Option<String>> = rc.mget(["example:a", "example:b", "example:c"]).await?;
    println!("MGET over 3 slots -> {values:?}");
    check(
        values == [Some("1".into()), Some("2".into()), Some("3".into())],
        "MGET in key order",
    )?;

    // Keyless commands go where the command table says: DBSIZE sums the
    // primaries, PING must succeed on each.
    let total: i64 = rc.dbsize().await?;
    let pong: String = rc
        .request_on(&Target::AllPrimaries, &Cmd::new("PING"))
        .await?;
    println!("DBSIZE (all primaries) -> {total}; PING on every primary -> {pong}");
    check(total >= 3 && pong == "PONG", "fan-out")?;

    // A pipeline is split by node, one write each, results in order.
    let mut pipe = Pipeline::new();
    pipe.incr("example:a").incr("example:b").incr("example:c");
    let (a, b, c): (i64, i64, i64) = rc.pipeline_into(&mut pipe).await?;
    check((a, b, c) == (2, 3, 4), "pipeline across nodes")?;

    // A transaction needs one slot: a hash tag puts keys together.
    let mut tx = Transaction::new();
    tx.set("{example:user}.name", "Ada")
        .incr("{example:user}.visits");
    let ((), visits): ((), i64) = rc.exec_into(&mut tx).await?;
    println!(
        "transaction on slot {} -> visits = {visits}",
        key_slot(b"{example:user}.name")
    );
    check(visits == 1, "one-slot transaction")?;

    // SCAN walks every primary, as one stream.
    let found: Vec<String> = rc
        .scan_iter(ScanIterOptions::new().pattern("example:*"))
        .try_collect()
        .await?;
    println!("SCAN example:* -> {} keys", found.len());
    check(found.len() == 3, "the scan saw the keys of every primary")?;

    println!("cluster: all checks passed");
    Ok(())
}
