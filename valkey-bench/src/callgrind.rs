//! Client instructions per operation, counted with `valgrind --tool=callgrind`
//! on fixed runs (minus a zero-operation baseline): stable where timings are
//! noisy.

use std::path::Path;
use std::process::Command;

use valkey_bench::Result;
use valkey_bench::clients::Kind;

use crate::Plan;

/// Instructions per operation of one client on one workload.
pub(crate) struct Instr {
    pub(crate) kind: Kind,
    pub(crate) workload: &'static str,
    pub(crate) per_op: f64,
}

pub(crate) fn callgrind_all(plan: &Plan, port: u16) -> Result<Vec<Instr>> {
    if !Command::new("valgrind")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        println!("valgrind not found: no instruction counts");
        return Ok(Vec::new());
    }
    let exe = std::env::current_exe()?;
    let mut runs: Vec<(Kind, &'static str, u64)> = Vec::new();
    for kind in Kind::all() {
        // The spinning loop's count would be mostly its spin.
        if kind != Kind::ValkeyRetry && kind != Kind::BareStdSpin {
            runs.push((kind, "seq", plan.instr_gets));
        }
    }
    for kind in [Kind::Valkey, Kind::ValkeyRetry, Kind::Redis] {
        if Kind::all().contains(&kind) {
            runs.push((kind, "tasks", plan.instr_task_ops));
        }
    }
    for kind in [Kind::Valkey, Kind::Connection, Kind::Redis] {
        if Kind::all().contains(&kind) {
            runs.push((kind, "pipe", plan.instr_pipe_ops));
        }
    }
    let mut out = Vec::new();
    for (kind, workload, ops) in runs {
        let start = std::time::Instant::now();
        let full = callgrind_run(&exe, &plan.out, kind, workload, port, ops);
        let base = callgrind_run(&exe, &plan.out, kind, workload, port, 0);
        match (full, base) {
            (Ok(full), Ok(base)) => {
                let per_op = (full as f64 - base as f64) / ops as f64;
                println!(
                    "  callgrind {:<26} {workload:<5} {per_op:>9.0} instructions/op ({:.1?})",
                    kind.name(),
                    start.elapsed()
                );
                out.push(Instr {
                    kind,
                    workload,
                    per_op,
                });
            }
            (Err(e), _) | (_, Err(e)) => println!("  callgrind {} failed: {e}", kind.name()),
        }
    }
    Ok(out)
}

/// Runs `instr` under callgrind and returns the total instruction count.
pub(crate) fn callgrind_run(
    exe: &Path,
    dir: &Path,
    kind: Kind,
    workload: &str,
    port: u16,
    ops: u64,
) -> Result<u64> {
    let file = dir.join(format!("callgrind.{}.{workload}.{ops}.out", kind.short()));
    let status = Command::new("valgrind")
        .arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", file.display()))
        .arg(exe)
        .args([
            "instr",
            "--client",
            kind.short(),
            "--port",
            &port.to_string(),
        ])
        .args(["--ops", &ops.to_string(), "--workload", workload])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()?;
    if !status.success() {
        return Err(format!("valgrind exited with {status}").into());
    }
    let text = std::fs::read_to_string(&file)?;
    text.lines()
        .find_map(|l| {
            l.strip_prefix("totals:")
                .or_else(|| l.strip_prefix("summary:"))
        })
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("no totals in {}", file.display()).into())
}
