//! The fault matrix: one workload (16 tasks of SET with unique values, INCR
//! on per-task counters, GET), many faults, one table. For each fault it
//! answers: did an acknowledged write vanish, did a non-idempotent write
//! run twice without being asked, did a call outlive its deadline (+50 ms),
//! did anything panic, which errors did callers see, and how long recovery
//! took. The table is printed (run with `--nocapture`) and copied into
//! `docs/reliability.md`; every row must show 0 lost, 0 duplicates, 0 past
//! deadline, 0 panics.

mod cluster;
#[path = "../common/mod.rs"]
mod common;
mod harness;
mod standalone;

use harness::Row;

/// The scenarios run one at a time: their timings are part of the checks.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn report(title: &str, rows: &[Row]) {
    let mut table = format!("\n{title}\n\n{}\n", harness::header());
    for row in rows {
        table.push_str(&row.line());
        table.push('\n');
    }
    println!("{table}");
    let failed: Vec<String> = rows
        .iter()
        .filter(|r| r.failed())
        .map(|r| format!("{}: {}", r.scenario, r.note))
        .collect();
    assert!(failed.is_empty(), "broken promises:\n{}", failed.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_faults() {
    let _one = ONE_AT_A_TIME.lock().await;
    report("Standalone", &standalone::rows().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_faults() {
    let _one = ONE_AT_A_TIME.lock().await;
    report("Cluster", &cluster::rows().await);
}
