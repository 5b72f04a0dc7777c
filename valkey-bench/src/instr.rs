//! `valkey-bench instr`: one run for callgrind to count, with what tracing
//! and metrics cost when asked for.

use std::time::Duration;

use valkey_bench::Result;
use valkey_bench::clients::{Client, Kind};
use valkey_bench::workloads;

use crate::{flag, option};

/// One measured run under callgrind: connect, warm up, then `--ops`
/// operations (zero for the baseline that is subtracted).
pub(crate) async fn instr(args: &[String]) -> Result<()> {
    let kind = option(args, "--client")
        .and_then(|c| Kind::parse(&c))
        .ok_or("--client: unknown or missing")?;
    let port: u16 = option(args, "--port").ok_or("--port missing")?.parse()?;
    let ops: u64 = option(args, "--ops")
        .unwrap_or_else(|| "0".into())
        .parse()?;
    // What observability costs: `--tracing` installs a subscriber that
    // takes every span and event (the registry, as any `tracing_subscriber`
    // setup does); `--metrics-recorder` a recorder for the `metrics` feature.
    if flag(args, "--tracing") {
        tracing::subscriber::set_global_default(tracing_subscriber::registry())?;
    }
    if flag(args, "--metrics-recorder") {
        #[cfg(feature = "metrics")]
        metrics_util::debugging::DebuggingRecorder::new().install()?;
        #[cfg(not(feature = "metrics"))]
        return Err("--metrics-recorder needs a build with --features metrics".into());
    }
    let mut client = Client::connect(kind, port).await?;
    workloads::prepare(&mut client).await?;
    match option(args, "--workload").as_deref().unwrap_or("seq") {
        "seq" => {
            workloads::plain_gets(&mut client, 100).await?;
            workloads::plain_gets(&mut client, ops).await?;
        }
        "tasks" => {
            workloads::concurrent_mixed(&client, 64, 640, Duration::from_secs(600)).await?;
            workloads::concurrent_mixed(&client, 64, ops, Duration::from_secs(600)).await?;
        }
        "gets" => {
            workloads::prepare_get_only(&mut client).await?;
            workloads::concurrent_gets(&client, 64, 640, Duration::from_secs(600)).await?;
            workloads::concurrent_gets(&client, 64, ops, Duration::from_secs(600)).await?;
        }
        "pipe" => {
            // `--ops` SETs in pipelines of 100.
            let cap = Duration::from_secs(600);
            workloads::pipelined_set(&mut client, 2, 100, cap).await?;
            workloads::pipelined_set(&mut client, ops / 100, 100, cap).await?;
        }
        other => return Err(format!("unknown workload {other}").into()),
    }
    Ok(())
}
