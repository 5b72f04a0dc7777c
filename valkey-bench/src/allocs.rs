//! Allocations per command on the hot path, counted by a
//! [`stats_alloc::StatsAlloc`] global allocator that the calling binary or
//! test installs (this library installs none, so the timing benchmarks run
//! on the plain system allocator).

use std::alloc::System;

use stats_alloc::{Region, StatsAlloc};

use crate::Result;
use crate::clients::{Client, Kind};
use crate::workloads;

/// Allocations and bytes per operation of one client on one operation.
#[derive(Debug, Clone)]
pub struct AllocRow {
    /// The client.
    pub kind: Kind,
    /// What was counted: `GET`, `SET`, `SET pipelined` or `64-task mix`.
    pub op: &'static str,
    /// Allocations (including reallocations) per operation.
    pub allocs: f64,
    /// Bytes allocated per operation.
    pub bytes: f64,
}

/// Counts allocations of `ops` operations of each kind after `warmup` of the
/// same, for every client in `kinds`.
pub async fn measure(
    alloc: &'static StatsAlloc<System>,
    kinds: &[Kind],
    port: u16,
    warmup: u64,
    ops: u64,
) -> Result<Vec<AllocRow>> {
    let mut rows = Vec::new();
    for &kind in kinds {
        let mut client = Client::connect(kind, port).await?;
        workloads::prepare(&mut client).await?;

        workloads::plain_gets(&mut client, warmup).await?;
        let region = Region::new(alloc);
        workloads::plain_gets(&mut client, ops).await?;
        rows.push(row(kind, "GET", region.change(), ops));

        for _ in 0..warmup {
            client.set("bench:alloc").await?;
        }
        let region = Region::new(alloc);
        for _ in 0..ops {
            client.set("bench:alloc").await?;
        }
        rows.push(row(kind, "SET", region.change(), ops));

        if kind != Kind::ValkeyRetry {
            let keys = workloads::pipeline_keys(100);
            let batches = (ops / 100).max(1);
            for _ in 0..(warmup / 100).max(1) {
                client.set_pipeline(&keys).await?;
            }
            let region = Region::new(alloc);
            for _ in 0..batches {
                client.set_pipeline(&keys).await?;
            }
            rows.push(row(
                kind,
                "SET pipelined (100)",
                region.change(),
                batches * 100,
            ));
        }

        if kind.shareable() {
            let cap = std::time::Duration::from_secs(60);
            workloads::concurrent_mixed(&client, 64, warmup.max(64), cap).await?;
            let n = ops / 64 * 64;
            let region = Region::new(alloc);
            let sample = workloads::concurrent_mixed(&client, 64, n, cap).await?;
            let mut r = row(kind, "64-task GET/SET mix", region.change(), sample.ops);
            // The 64 spawned tasks and their keys are the benchmark's own.
            r.op = "64-task GET/SET mix*";
            rows.push(r);
        }
    }
    Ok(rows)
}

fn row(kind: Kind, op: &'static str, stats: stats_alloc::Stats, ops: u64) -> AllocRow {
    let ops = ops.max(1) as f64;
    AllocRow {
        kind,
        op,
        allocs: (stats.allocations + stats.reallocations) as f64 / ops,
        bytes: stats.bytes_allocated as f64 / ops,
    }
}

/// Prints rows as a table.
pub fn print(rows: &[AllocRow]) {
    println!(
        "  {:<28} {:<22} {:>12} {:>12}",
        "client", "operation", "allocs/op", "bytes/op"
    );
    for r in rows {
        println!(
            "  {:<28} {:<22} {:>12.2} {:>12.1}",
            r.kind.name(),
            r.op,
            r.allocs,
            r.bytes
        );
    }
    println!(
        "  * includes spawning the benchmark's 64 tasks and formatting their keys, once per run"
    );
}
