//! `valkey-bench`: runs valkey-client and its peers through identical
//! workloads against one real valkey-server, interleaved, and prints a table.
//!
//! ```text
//! valkey-bench compare [--port P] [--reps 10] [--quick] [--only a,b,c,d,g] [--no-callgrind] [--no-redis-benchmark] [--out DIR]
//! valkey-bench instr --client NAME --port P --ops N [--workload seq|tasks|gets|pipe] [--tracing] [--metrics-recorder]
//! ```
//!
//! `compare` starts its own server (pinned to core 0, itself to core 1 when
//! two cores exist) unless `--port` is given, and for workload (d) its own
//! cluster of three primaries (every node on core 0), stopped when it ends.
//! `instr` is what `compare` runs under callgrind to count instructions per
//! GET.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

mod callgrind;
mod instr;
mod reference;

use callgrind::{Instr, callgrind_all};
use reference::{redis_benchmark_available, run_redis_benchmark};

use valkey_bench::Result;
use valkey_bench::clients::{Client, Kind};
use valkey_bench::workloads::{self, Sample, median};

/// The primaries of the cluster of workload (d) (no replicas).
const CLUSTER_PRIMARIES: usize = 3;

/// Counts and caps of one comparison.
#[derive(Debug, Clone)]
struct Plan {
    reps: usize,
    seq_gets: u64,
    batches: u64,
    batch: usize,
    tasks: usize,
    task_ops: u64,
    cap: Duration,
    instr_gets: u64,
    instr_task_ops: u64,
    instr_pipe_ops: u64,
    callgrind: bool,
    redis_benchmark: bool,
    out: PathBuf,
    /// The workloads to run, in table order.
    workloads: Vec<Workload>,
}

impl Plan {
    fn full() -> Plan {
        Plan {
            reps: 10,
            seq_gets: 6_000,
            batches: 1_500,
            batch: 100,
            tasks: 64,
            task_ops: 192_000,
            cap: Duration::from_secs(10),
            instr_gets: 2_000,
            instr_task_ops: 6_400,
            instr_pipe_ops: 20_000,
            callgrind: true,
            redis_benchmark: true,
            out: PathBuf::from("target/bench"),
            workloads: vec![
                Workload::SeqGet,
                Workload::PipeSet,
                Workload::Tasks,
                Workload::Cluster,
                Workload::GetOnly,
            ],
        }
    }

    fn quick() -> Plan {
        Plan {
            reps: 1,
            seq_gets: 2_000,
            batches: 100,
            task_ops: 12_800,
            instr_gets: 200,
            instr_task_ops: 640,
            instr_pipe_ops: 2_000,
            ..Plan::full()
        }
    }
}

/// The workloads, in table order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Workload {
    SeqGet,
    PipeSet,
    Tasks,
    Cluster,
    GetOnly,
}

impl Workload {
    fn title(self, plan: &Plan) -> String {
        match self {
            Workload::SeqGet => "(a) sequential GET, one connection, 64 B".to_string(),
            Workload::PipeSet => format!("(b) SET in pipelines of {}, 64 B", plan.batch),
            Workload::Tasks => format!(
                "(c)/(e) {} tasks sharing one client, GET/SET alternating, 64 B",
                plan.tasks
            ),
            Workload::Cluster => format!(
                "(d) {} tasks sharing one cluster client, {CLUSTER_PRIMARIES} primaries, GET/SET alternating over {} keys, replies as Option<Vec<u8>>, 64 B",
                plan.tasks,
                workloads::CLUSTER_KEYS
            ),
            Workload::GetOnly => format!(
                "(g) {} tasks, each with its own clone, GET only over 1,000 keys, replies as Option<Vec<u8>>, 64 B",
                plan.tasks
            ),
        }
    }

    fn kinds(self) -> Vec<Kind> {
        Kind::all()
            .into_iter()
            .filter(|k| match self {
                Workload::SeqGet => *k != Kind::ValkeyRetry,
                Workload::PipeSet => !matches!(k, Kind::ValkeyRetry | Kind::BareStdSpin),
                Workload::Tasks => k.shareable(),
                Workload::Cluster => k.clustered(),
                Workload::GetOnly => k.shareable() && *k != Kind::ValkeyRetry,
            })
            .collect()
    }

    fn ours(self) -> &'static str {
        Kind::Valkey.name()
    }
}

#[derive(Default)]
struct Results {
    /// (workload, row label) -> one sample per repetition.
    samples: BTreeMap<(Workload, String), Vec<Sample>>,
    /// Row order per workload, as first seen.
    order: BTreeMap<Workload, Vec<String>>,
}

impl Results {
    fn add(&mut self, w: Workload, label: &str, s: Sample) {
        let order = self.order.entry(w).or_default();
        if !order.iter().any(|l| l == label) {
            order.push(label.to_string());
        }
        self.samples
            .entry((w, label.to_string()))
            .or_default()
            .push(s);
    }

    fn ops(&self, w: Workload, label: &str) -> Option<f64> {
        let s = self.samples.get(&(w, label.to_string()))?;
        median(&s.iter().map(Sample::ops_per_sec).collect::<Vec<_>>())
    }

    /// The median over repetitions of `a / b`, each pair from one repetition.
    fn paired(&self, w: Workload, a: &str, b: &str) -> Option<f64> {
        let a = self.samples.get(&(w, a.to_string()))?;
        let b = self.samples.get(&(w, b.to_string()))?;
        let ratios: Vec<f64> = a
            .iter()
            .zip(b)
            .map(|(a, b)| a.ops_per_sec() / b.ops_per_sec())
            .collect();
        median(&ratios)
    }

    /// The median over repetitions of `a / (the fastest of peers in that
    /// repetition)`, and the peer fastest by median throughput.
    fn paired_best(&self, w: Workload, a: &str, peers: &[&str]) -> Option<(f64, String)> {
        let a = self.samples.get(&(w, a.to_string()))?;
        let runs: Vec<&Vec<Sample>> = peers
            .iter()
            .filter_map(|p| self.samples.get(&(w, p.to_string())))
            .collect();
        let ratios: Vec<f64> = a
            .iter()
            .enumerate()
            .filter_map(|(i, a)| {
                let best = runs
                    .iter()
                    .filter_map(|r| r.get(i))
                    .map(Sample::ops_per_sec)
                    .max_by(f64::total_cmp)?;
                Some(a.ops_per_sec() / best)
            })
            .collect();
        let best = peers
            .iter()
            .filter_map(|p| Some((self.ops(w, p)?, p.to_string())))
            .max_by(|x, y| x.0.total_cmp(&y.0))?;
        Some((median(&ratios)?, best.1))
    }

    fn lat(&self, w: Workload, label: &str, p99: bool) -> Option<f64> {
        let s = self.samples.get(&(w, label.to_string()))?;
        let v: Vec<f64> = s
            .iter()
            .filter_map(|s| if p99 { s.p99 } else { s.p50 })
            .map(|d| d.as_secs_f64() * 1e6)
            .collect();
        median(&v)
    }
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    match args.first().map(String::as_str) {
        Some("compare") => runtime.block_on(compare(&args[1..])),
        Some("instr") => runtime.block_on(instr::instr(&args[1..])),
        _ => {
            eprintln!(
                "usage: valkey-bench compare [--port P] [--reps N] [--quick] [--only a,b,c,d,g] [--no-callgrind] \
                 [--no-redis-benchmark] [--out DIR]\n       \
                 valkey-bench instr --client NAME --port P --ops N [--workload seq|tasks|gets|pipe] \
                 [--tracing] [--metrics-recorder]"
            );
            std::process::exit(2);
        }
    }
}

fn flag(args: &[String], name: &str) -> bool {
    args.iter().any(|a| a == name)
}

fn option(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

async fn compare(args: &[String]) -> Result<()> {
    let mut plan = if flag(args, "--quick") {
        Plan::quick()
    } else {
        Plan::full()
    };
    if let Some(reps) = option(args, "--reps") {
        plan.reps = reps.parse()?;
    }
    if let Some(out) = option(args, "--out") {
        plan.out = PathBuf::from(out);
    }
    if let Some(only) = option(args, "--only") {
        plan.workloads = only
            .split(',')
            .map(|w| match w {
                "a" => Ok(Workload::SeqGet),
                "b" => Ok(Workload::PipeSet),
                "c" => Ok(Workload::Tasks),
                "d" => Ok(Workload::Cluster),
                "g" => Ok(Workload::GetOnly),
                other => Err(format!(
                    "--only: unknown workload {other} (a, b, c, d or g)"
                )),
            })
            .collect::<std::result::Result<_, _>>()?;
    }
    plan.callgrind &= !flag(args, "--no-callgrind");
    plan.redis_benchmark &= !flag(args, "--no-redis-benchmark");
    std::fs::create_dir_all(&plan.out)?;

    // The machine's cores, not this process's affinity (it may already be
    // pinned to one core by the script).
    let cores = std::fs::read_to_string("/proc/cpuinfo")
        .map(|t| t.lines().filter(|l| l.starts_with("processor")).count())
        .unwrap_or(1)
        .max(1);
    let _server;
    let port = match option(args, "--port") {
        Some(p) => p.parse()?,
        None => {
            let server = valkey_testkit::Server::start(valkey_testkit::ServerConfig::new()).await?;
            let port = server.port();
            if cores >= 2 {
                if let Some(pid) = server.pid() {
                    pin(pid, "0", false);
                }
                pin(std::process::id(), "1", true);
            }
            _server = server;
            port
        }
    };
    // Workload (d)'s cluster, started here and killed when `_cluster` drops
    // at the end of the comparison. Every node goes on core 0, all its
    // threads (they inherit this process's core when it is pinned).
    let mut _cluster = None;
    let mut seeds: Vec<(String, u16)> = Vec::new();
    if plan.workloads.contains(&Workload::Cluster) {
        let cluster = valkey_testkit::Cluster::start(valkey_testkit::ClusterConfig::new(
            CLUSTER_PRIMARIES,
            0,
        ))
        .await?;
        if cores >= 2 {
            for node in cluster.nodes() {
                if let Some(pid) = node.pid() {
                    pin(pid, "0", true);
                }
            }
        }
        seeds = cluster.seed_addrs();
        let mut ours = Client::connect_cluster(Kind::Valkey, &seeds).await?;
        workloads::prepare_cluster(&mut ours).await?;
        println!(
            "valkey-bench: cluster of {CLUSTER_PRIMARIES} primaries on {}, {} keys stored",
            seeds
                .iter()
                .map(|(h, p)| format!("{h}:{p}"))
                .collect::<Vec<_>>()
                .join(", "),
            workloads::CLUSTER_KEYS
        );
        _cluster = Some(cluster);
    }
    println!(
        "valkey-bench: server 127.0.0.1:{port}, {} repetitions, {cores} cores, peers {}",
        plan.reps,
        if cfg!(feature = "peers") {
            "on"
        } else {
            "off (build with --features peers)"
        }
    );
    let rb = plan.redis_benchmark && redis_benchmark_available();
    if plan.redis_benchmark && !rb {
        println!("redis-benchmark not found: its reference rows are left out");
    }

    let mut results = Results::default();
    let start = std::time::Instant::now();
    for rep in 0..plan.reps {
        println!(
            "repetition {}/{} ({:.0?} so far)",
            rep + 1,
            plan.reps,
            start.elapsed()
        );
        for w in plan.workloads.clone() {
            // Every repetition starts the line-up at another runner, so no
            // runner always follows the same one, and the drift of this
            // machine's speed within a repetition evens out.
            let mut runners: Vec<Option<Kind>> = rb.then_some(None).into_iter().collect();
            runners.extend(w.kinds().into_iter().map(Some));
            let len = runners.len();
            runners.rotate_left(rep % len);
            if rep % 2 == 1 {
                // And (e) compares like with like: the two Valkey runs take
                // turns going first.
                let a = runners.iter().position(|r| *r == Some(Kind::Valkey));
                let b = runners.iter().position(|r| *r == Some(Kind::ValkeyRetry));
                if let (Some(a), Some(b)) = (a, b) {
                    runners.swap(a, b);
                }
            }
            for runner in runners {
                match runner {
                    None => {
                        // (d) runs against the cluster, through its first node.
                        let port = match w {
                            Workload::Cluster => seeds[0].1,
                            _ => port,
                        };
                        for (label, sample) in run_redis_benchmark(&plan, w, port)? {
                            results.add(w, &label, sample);
                        }
                    }
                    Some(kind) => match run_one(&plan, w, kind, port, &seeds).await {
                        Ok(s) => results.add(w, kind.name(), s),
                        Err(e) => println!("  {} on {:?} failed: {e}", kind.name(), w),
                    },
                }
            }
        }
    }
    println!("workloads done in {:.1?}", start.elapsed());

    let instr = if plan.callgrind {
        callgrind_all(&plan, port)?
    } else {
        Vec::new()
    };
    print_table(&plan, &results, &instr);
    Ok(())
}

fn pin(pid: u32, core: &str, all_threads: bool) {
    let mut cmd = Command::new("taskset");
    if all_threads {
        cmd.arg("-a");
    }
    let ok = cmd
        .args(["-pc", core, &pid.to_string()])
        .stdout(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        println!("could not pin pid {pid} to core {core} (taskset missing?)");
    }
}

/// One run of workload `w` by a client of `kind`: on the server at `port`,
/// or for (d) on the cluster of these `seeds`.
async fn run_one(
    plan: &Plan,
    w: Workload,
    kind: Kind,
    port: u16,
    seeds: &[(String, u16)],
) -> Result<Sample> {
    if w == Workload::Cluster {
        // The keys were stored once, when the cluster started.
        let client = Client::connect_cluster(kind, seeds).await?;
        workloads::cluster_mixed(&client, plan.tasks, plan.tasks as u64 * 10, plan.cap).await?;
        return workloads::cluster_mixed(&client, plan.tasks, plan.task_ops, plan.cap).await;
    }
    let mut client = Client::connect(kind, port).await?;
    workloads::prepare(&mut client).await?;
    match w {
        Workload::SeqGet => {
            workloads::plain_gets(&mut client, 200).await?;
            workloads::sequential_get(&mut client, plan.seq_gets, plan.cap).await
        }
        Workload::PipeSet => {
            workloads::pipelined_set(&mut client, 5, plan.batch, plan.cap).await?;
            workloads::pipelined_set(&mut client, plan.batches, plan.batch, plan.cap).await
        }
        Workload::Tasks => {
            workloads::concurrent_mixed(&client, plan.tasks, plan.tasks as u64 * 10, plan.cap)
                .await?;
            workloads::concurrent_mixed(&client, plan.tasks, plan.task_ops, plan.cap).await
        }
        Workload::GetOnly => {
            workloads::prepare_get_only(&mut client).await?;
            workloads::concurrent_gets(&client, plan.tasks, plan.tasks as u64 * 10, plan.cap)
                .await?;
            workloads::concurrent_gets(&client, plan.tasks, plan.task_ops, plan.cap).await
        }
        Workload::Cluster => unreachable!("run on the cluster above"),
    }
}

fn fmt_opt(v: Option<f64>, prec: usize) -> String {
    v.map_or_else(|| "-".to_string(), |v| format!("{v:.prec$}"))
}

fn print_table(plan: &Plan, results: &Results, instr: &[Instr]) {
    println!();
    for (w, labels) in &results.order {
        let ours = results.ops(*w, w.ours());
        println!("{}", w.title(plan));
        println!(
            "  {:<44} {:>12} {:>9} {:>9} {:>12}",
            "client", "ops/s", "p50 us", "p99 us", "vs ours"
        );
        for label in labels {
            let ops = results.ops(*w, label);
            let ratio = match (ops, ours) {
                (Some(o), Some(b)) => Some(o / b),
                _ => None,
            };
            println!(
                "  {:<44} {:>12} {:>9} {:>9} {:>11}x",
                label,
                fmt_opt(ops, 0),
                fmt_opt(results.lat(*w, label, false), 1),
                fmt_opt(results.lat(*w, label, true), 1),
                fmt_opt(ratio, 3)
            );
        }
        println!();
    }
    if !instr.is_empty() {
        println!(
            "(f) client instructions per operation (callgrind: {} sequential GETs; {} ops of the 64-task mix; {} SETs in pipelines of 100), minus a zero-op baseline",
            plan.instr_gets, plan.instr_task_ops, plan.instr_pipe_ops
        );
        let ours = |workload: &str| {
            instr
                .iter()
                .find(|i| i.kind == Kind::Valkey && i.workload == workload)
                .map(|i| i.per_op)
        };
        for i in instr {
            let ratio = ours(i.workload).map(|o| i.per_op / o);
            println!(
                "  {:<36} {:<6} {:>12.0} {:>11}x",
                i.kind.name(),
                i.workload,
                i.per_op,
                fmt_opt(ratio, 3)
            );
        }
        println!();
    }

    println!(
        "Targets: the median over {} repetitions of the ratio within each repetition \
         (in brackets: the ratio of the medians in the tables above)",
        plan.reps
    );
    let verdict = |r: Option<f64>, ok: &dyn Fn(f64) -> bool| match r {
        Some(r) if ok(r) => format!("{r:.3}  met"),
        Some(r) => format!("{r:.3}  NOT met"),
        None => "n/a".to_string(),
    };
    // A throughput ratio `a / b` in workload `w`: paired per repetition,
    // then the ratio of the medians for comparison.
    let throughput = |w: Workload, a: &str, b: &str, min: f64| {
        let of_medians = match (results.ops(w, a), results.ops(w, b)) {
            (Some(a), Some(b)) => format!(" ({:.3})", a / b),
            _ => String::new(),
        };
        verdict(results.paired(w, a, b), &|r| r >= min) + &of_medians
    };
    let instructions = |workload: &str, a: Kind, b: Kind| {
        let get = |k: Kind| {
            instr
                .iter()
                .find(|i| i.kind == k && i.workload == workload)
                .map(|i| i.per_op)
        };
        get(a).zip(get(b)).map(|(a, b)| a / b)
    };
    // Ours against the fastest Rust peer, per repetition (redis-benchmark
    // is a reference, not a peer).
    let best_peer = |w: Workload, min: f64| {
        let peers = [Kind::Redis.name(), Kind::Fred.name(), Kind::Glide.name()];
        match results.paired_best(w, Kind::Valkey.name(), &peers) {
            Some((r, best)) => {
                let of_medians = results
                    .ops(w, Kind::Valkey.name())
                    .zip(results.ops(w, &best))
                    .map_or(String::new(), |(a, b)| format!(" ({:.3})", a / b));
                format!(
                    "{}{of_medians}, fastest peer: {best}",
                    verdict(Some(r), &|r| r >= min)
                )
            }
            None => "n/a".to_string(),
        }
    };
    let rb_pipe = format!("redis-benchmark -P {} -c 1", plan.batch);
    let rows: Vec<(String, String)> = vec![
        (
            "(a) valkey-client / redis-benchmark -c 1   >= 0.95".into(),
            throughput(
                Workload::SeqGet,
                Kind::Valkey.name(),
                "redis-benchmark -c 1",
                0.95,
            ),
        ),
        (
            "(a) Connection    / redis-benchmark -c 1   >= 0.95".into(),
            throughput(
                Workload::SeqGet,
                Kind::Connection.name(),
                "redis-benchmark -c 1",
                0.95,
            ),
        ),
        (
            format!("(b) valkey-client / {rb_pipe} >= 0.95"),
            throughput(Workload::PipeSet, Kind::Valkey.name(), &rb_pipe, 0.95),
        ),
        (
            format!("(b) Connection    / {rb_pipe} >= 0.95"),
            throughput(Workload::PipeSet, Kind::Connection.name(), &rb_pipe, 0.95),
        ),
        (
            "(c) valkey-client / redis multiplexed      >= 2.0".into(),
            throughput(
                Workload::Tasks,
                Kind::Valkey.name(),
                Kind::Redis.name(),
                2.0,
            ),
        ),
        (
            "(d) valkey-client / best peer, cluster     >= 1.5".into(),
            best_peer(Workload::Cluster, 1.5),
        ),
        (
            "(g) valkey-client / redis, GET only        >= 2.0".into(),
            throughput(
                Workload::GetOnly,
                Kind::Valkey.name(),
                Kind::Redis.name(),
                2.0,
            ),
        ),
        (
            "(e) with Retry / without (64 tasks)        >= 0.98".into(),
            throughput(
                Workload::Tasks,
                Kind::ValkeyRetry.name(),
                Kind::Valkey.name(),
                0.98,
            ),
        ),
        (
            "(e) instructions/op with Retry / without   <= 1.02".into(),
            verdict(
                instructions("tasks", Kind::ValkeyRetry, Kind::Valkey),
                &|r| r <= 1.02,
            ),
        ),
        (
            "(f) instructions/GET ours / redis          <= 0.70".into(),
            verdict(instructions("seq", Kind::Valkey, Kind::Redis), &|r| {
                r <= 0.70
            }),
        ),
    ];
    for (name, v) in rows {
        println!("  {name:<62} {v}");
    }
}
