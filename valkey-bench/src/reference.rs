//! `redis-benchmark` (Debian's redis-tools) as the C-level reference: the
//! same shapes as our workloads, parsed from its `--csv` output.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use valkey_bench::Result;
use valkey_bench::workloads::{CLUSTER_KEYS, Sample};

use crate::{Plan, Workload};

pub(crate) fn redis_benchmark_available() -> bool {
    Command::new("redis-benchmark")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The `redis-benchmark` runs matching a workload: (row label, sample).
pub(crate) fn run_redis_benchmark(
    plan: &Plan,
    w: Workload,
    port: u16,
) -> Result<Vec<(String, Sample)>> {
    let port = port.to_string();
    let base = ["-h", "127.0.0.1", "-p", port.as_str(), "-d", "64", "--csv"];
    let mut rows = Vec::new();
    match w {
        Workload::SeqGet => {
            let n = plan.seq_gets.to_string();
            let out = rb_run(&base, &["-t", "get", "-c", "1", "-n", &n])?;
            if let Some(r) = out.get("GET") {
                rows.push(("redis-benchmark -c 1".to_string(), r.sample(plan.seq_gets)));
            }
        }
        Workload::PipeSet => {
            let total = plan.batches * plan.batch as u64;
            let n = total.to_string();
            let p = plan.batch.to_string();
            let out = rb_run(&base, &["-t", "set", "-P", &p, "-c", "1", "-n", &n])?;
            if let Some(r) = out.get("SET") {
                rows.push((format!("redis-benchmark -P {p} -c 1"), r.sample(total)));
            }
            let out = rb_run(&base, &["-t", "set", "-P", &p, "-n", &n])?;
            if let Some(r) = out.get("SET") {
                rows.push((format!("redis-benchmark -P {p} -c 50"), r.sample(total)));
            }
        }
        Workload::Tasks => {
            rows.extend(get_then_set(plan, &base, &[], "")?);
        }
        Workload::Cluster => {
            // `port` is one node of the cluster; `--cluster` reads the slot
            // map there and spreads its connections and (hash-tagged) keys
            // over the primaries.
            let r = CLUSTER_KEYS.to_string();
            rows.extend(get_then_set(
                plan,
                &base,
                &["--cluster", "-r", &r],
                " --cluster",
            )?);
        }
        // No reference row: redis-benchmark has no client-side tasks.
        Workload::GetOnly => {}
    }
    Ok(rows)
}

/// `plan.tasks` connections of GETs, then of SETs, as one row: a reference
/// only, and slow (one request per connection at a time), so a third of the
/// workload's operations keeps the run short.
fn get_then_set(
    plan: &Plan,
    base: &[&str],
    extra: &[&str],
    label: &str,
) -> Result<Option<(String, Sample)>> {
    let half = plan.task_ops / 6;
    let n = half.to_string();
    let c = plan.tasks.to_string();
    let mut args = vec!["-t", "get,set", "-c", &c, "-n", &n];
    args.extend_from_slice(extra);
    let out = rb_run(base, &args)?;
    Ok(match (out.get("GET"), out.get("SET")) {
        // GETs then SETs, run one after the other: ops over total time.
        (Some(g), Some(s)) => Some((
            format!("redis-benchmark{label} -c {c} (GET, SET)"),
            Sample {
                ops: 2 * half,
                elapsed: Duration::from_secs_f64(half as f64 / g.rps + half as f64 / s.rps),
                p50: None,
                p99: None,
            },
        )),
        _ => None,
    })
}

pub(crate) struct RbRow {
    rps: f64,
    p50_ms: Option<f64>,
    p99_ms: Option<f64>,
}

impl RbRow {
    fn sample(&self, ops: u64) -> Sample {
        let us = |ms: f64| Duration::from_secs_f64(ms / 1e3);
        Sample {
            ops,
            elapsed: Duration::from_secs_f64(ops as f64 / self.rps),
            p50: self.p50_ms.map(us),
            p99: self.p99_ms.map(us),
        }
    }
}

/// Runs redis-benchmark with `--csv` and parses its rows by test name.
pub(crate) fn rb_run(base: &[&str], extra: &[&str]) -> Result<BTreeMap<String, RbRow>> {
    let out = Command::new("timeout")
        .arg("120")
        .arg("redis-benchmark")
        .args(base)
        .args(extra)
        .output()?;
    if !out.status.success() {
        return Err(format!(
            "redis-benchmark {extra:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut header: Vec<String> = Vec::new();
    let mut rows = BTreeMap::new();
    for line in text.lines() {
        let fields: Vec<String> = line
            .split(',')
            .map(|f| f.trim().trim_matches('"').to_string())
            .collect();
        if fields.first().is_some_and(|f| f == "test") {
            header = fields;
            continue;
        }
        let col = |name: &str| {
            header
                .iter()
                .position(|h| h == name)
                .and_then(|i| fields.get(i))
                .and_then(|v| v.parse::<f64>().ok())
        };
        if let (Some(name), Some(rps)) = (fields.first(), col("rps")) {
            let name = name.split_whitespace().next().unwrap_or(name).to_string();
            rows.insert(
                name,
                RbRow {
                    rps,
                    p50_ms: col("p50_latency_ms"),
                    p99_ms: col("p99_latency_ms"),
                },
            );
        }
    }
    Ok(rows)
}
