//! What a failed call says about delivery is true, under real faults: 16
//! tasks write unique values (`SET`, alone and two in a pipeline) and bump
//! per-task counters (`INCR`) through a retrying client while (a) the server
//! is killed and restarted, (b) its connections go silent, (c) connections
//! are reset and refused. Every call's outcome is recorded, then checked
//! against the server:
//!
//! - a call (or pipelined command) that failed saying it certainly did not
//!   run ([`Delivery::NotSent`], or a refusal that proves it) left nothing
//!   on the server, also when an earlier attempt of it was written and ran
//!   and only its retries were refused: the error reports the strongest
//!   delivery of all attempts;
//! - every acknowledged write is on the server;
//! - each counter holds at least its acknowledged increments and at most
//!   those plus the failed `INCR`s that may have run (at most once: a lost
//!   `INCR` is never re-sent).
//!
//! In (b) the client has no response timeout: only retiring the connection
//! a call timed out on lets it recover once the black hole lifts.
//!
//! Each scenario prints a table of outcomes (`--nocapture` shows it).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;
use valkey_client::Commands;
use valkey_client::{
    Cmd, Connection, Delivery, Error, ErrorKind, Event, ExponentialBackoff, Pipeline, Retry, Valkey,
};
use valkey_testkit::Server;

mod common;

const TASKS: usize = 16;
/// Rounds per task, at most (a SET, an INCR and a pipeline each).
const MAX_ROUNDS: usize = 200;
/// Load per scenario, at most; the fault script stops it sooner.
const MAX_LOAD: Duration = Duration::from_secs(5);

/// 4 retries, 16 + 32 + 64 + 128 ms apart: a call gives up within about
/// 250 ms of failures, shorter than each fault below, so every fault leaves
/// failed calls to check, not only retried ones. The deadline bounds a call
/// on a silent connection; the connect timeout bounds a handshake that got
/// swallowed (the default 5 s would outlast the scenario).
fn faulty_client(port: u16, retries: Arc<AtomicUsize>) -> valkey_client::ValkeyBuilder {
    Valkey::builder()
        .host("127.0.0.1")
        .port(port)
        .retry(Retry::new(ExponentialBackoff::default(), 4))
        .request_timeout(Some(Duration::from_secs(1)))
        .connect_timeout(Some(Duration::from_millis(250)))
        .on_event(move |event| {
            if matches!(event, Event::Retry { .. }) {
                retries.fetch_add(1, Ordering::Relaxed);
            }
        })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Op {
    Set,
    Incr,
    /// One of the two SETs of a pipeline: its result is its own.
    PipedSet(usize),
}

impl Op {
    fn name(self) -> String {
        match self {
            Op::Set => "SET".to_string(),
            Op::Incr => "INCR".to_string(),
            Op::PipedSet(i) => format!("PIPE[{i}] SET"),
        }
    }
}

#[derive(Debug)]
enum Outcome {
    /// `INCR`'s reply; `None` for `SET`.
    Ok(Option<i64>),
    Err {
        kind: ErrorKind,
        delivery: Delivery,
        may_have_run: bool,
    },
}

impl Outcome {
    fn of<T>(result: Result<T, Error>, reply: impl FnOnce(T) -> Option<i64>) -> Outcome {
        match result {
            Ok(value) => Outcome::Ok(reply(value)),
            Err(err) => Outcome::Err {
                kind: err.kind(),
                delivery: err.delivery(),
                may_have_run: may_have_run(&err),
            },
        }
    }

    fn label(&self) -> String {
        match self {
            Outcome::Ok(_) => "ok".to_string(),
            Outcome::Err { kind, delivery, .. } => format!("{kind:?} / {delivery:?}"),
        }
    }
}

/// Whether the command behind a failed call may have run: the error does
/// not say it was never sent, nor is it a refusal that proves it did not run
/// (LOADING after a restart).
fn may_have_run(err: &Error) -> bool {
    match err.delivery() {
        Delivery::NotSent => false,
        Delivery::Replied => !err.proves_not_run(),
        _ => true,
    }
}

struct Record {
    task: usize,
    round: usize,
    op: Op,
    outcome: Outcome,
}

impl Record {
    /// The key a SET (piped or not) wrote; every call writes its own.
    fn key(&self, scenario: &str) -> String {
        let (task, round) = (self.task, self.round);
        match self.op {
            Op::Set => format!("{scenario}:set:{task}:{round}"),
            Op::PipedSet(i) => format!("{scenario}:piped:{task}:{round}:{i}"),
            Op::Incr => counter_key(scenario, task),
        }
    }
}

fn set_value(task: usize, round: usize) -> String {
    format!("{task}:{round}")
}

fn counter_key(scenario: &str, task: usize) -> String {
    format!("{scenario}:counter:{task}")
}

/// The load: `TASKS` tasks, each repeating a `SET` of a value no other call
/// writes, an `INCR` of its own counter and a pipeline of two such SETs,
/// until stopped or a bound is reached.
struct Load {
    started: Instant,
    calls: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    tasks: Vec<JoinHandle<Vec<Record>>>,
}

impl Load {
    fn start(scenario: &'static str, client: &Valkey) -> Load {
        let started = Instant::now();
        let calls = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = (0..TASKS)
            .map(|task| {
                let client = client.clone();
                let calls = calls.clone();
                let stop = stop.clone();
                tokio::spawn(async move {
                    let mut records = Vec::new();
                    for round in 0..MAX_ROUNDS {
                        if stop.load(Ordering::Relaxed) || started.elapsed() > MAX_LOAD {
                            break;
                        }
                        let mut record = |op, outcome| {
                            records.push(Record {
                                task,
                                round,
                                op,
                                outcome,
                            })
                        };
                        let value = set_value(task, round);
                        let key = format!("{scenario}:set:{task}:{round}");
                        let result = client.set(&key, &value).await;
                        record(Op::Set, Outcome::of(result, |()| None));
                        let result = client.incr(counter_key(scenario, task)).await;
                        record(Op::Incr, Outcome::of(result, Some));
                        let mut pipe = Pipeline::new();
                        for i in 0..2 {
                            let key = format!("{scenario}:piped:{task}:{round}:{i}");
                            pipe.cmd("SET").arg(key).arg(&value);
                        }
                        match client.pipeline(&mut pipe).await {
                            Ok(results) => {
                                for (i, result) in results.into_iter().enumerate() {
                                    record(Op::PipedSet(i), Outcome::of(result, |_| None));
                                }
                            }
                            Err(err) => {
                                for i in 0..2 {
                                    record(
                                        Op::PipedSet(i),
                                        Outcome::of::<()>(Err(err.clone()), |()| None),
                                    );
                                }
                            }
                        }
                        calls.fetch_add(3, Ordering::Relaxed);
                    }
                    records
                })
            })
            .collect();
        Load {
            started,
            calls,
            stop,
            tasks,
        }
    }

    /// Waits until `more` calls have completed (within the load's bound),
    /// so that a fault strikes a load in full swing.
    async fn after_calls(&self, more: usize) {
        let target = self.calls.load(Ordering::Relaxed) + more;
        while self.calls.load(Ordering::Relaxed) < target && self.started.elapsed() < MAX_LOAD {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Stops the load and gathers every call's outcome.
    async fn finish(self) -> (Vec<Record>, Duration) {
        self.stop.store(true, Ordering::Relaxed);
        let mut records = Vec::new();
        for task in self.tasks {
            records.extend(task.await.expect("a load task panicked"));
        }
        (records, self.started.elapsed())
    }
}

/// Reads every key the load wrote, on a fresh connection to the server
/// (not through any proxy), and checks each outcome against it. Prints the
/// scenario's table.
async fn check(
    server: &Server,
    scenario: &str,
    records: &[Record],
    took: Duration,
    retries: usize,
) {
    let mut admin: Connection = server.connect().await.expect("connect to check");
    // Every SET key, in record order; MGET in chunks.
    let sets: Vec<&Record> = records.iter().filter(|r| r.op != Op::Incr).collect();
    let mut stored: Vec<Option<String>> = Vec::with_capacity(sets.len());
    for chunk in sets.chunks(500) {
        let keys = chunk.iter().map(|r| r.key(scenario));
        let values = admin
            .request(&Cmd::new("MGET").args(keys))
            .await
            .expect("MGET");
        let values = values.as_slice().expect("MGET gives an array");
        assert_eq!(values.len(), chunk.len());
        stored.extend(values.iter().map(|v| v.as_str().map(str::to_string)));
    }

    // (op, outcome) -> (calls, of them with the value on the server)
    let mut table: BTreeMap<(Op, String), (usize, usize)> = BTreeMap::new();
    let mut broken = Vec::new();
    for (record, stored) in sets.iter().zip(&stored) {
        let expected = set_value(record.task, record.round);
        let present = stored.as_deref() == Some(expected.as_str());
        let row = table
            .entry((record.op, record.outcome.label()))
            .or_default();
        row.0 += 1;
        row.1 += usize::from(present);
        if stored.is_some() && !present {
            broken.push(format!(
                "SET {}:{} holds {stored:?}",
                record.task, record.round
            ));
        }
        match &record.outcome {
            Outcome::Ok(_) if !present => broken.push(format!(
                "SET {}:{} was acknowledged but is not on the server",
                record.task, record.round
            )),
            Outcome::Err {
                may_have_run: false,
                delivery,
                kind,
            } if present => broken.push(format!(
                "SET {}:{} failed with {kind:?} / {delivery:?} (did not run) but is on the server",
                record.task, record.round
            )),
            _ => {}
        }
    }

    // Per task: acknowledged INCRs, failed ones that may have run, last reply.
    let mut counters: HashMap<usize, (i64, i64, i64)> = HashMap::new();
    for record in records.iter().filter(|r| r.op == Op::Incr) {
        table
            .entry((Op::Incr, record.outcome.label()))
            .or_default()
            .0 += 1;
        let counter = counters.entry(record.task).or_default();
        match record.outcome {
            Outcome::Ok(Some(n)) => {
                // Only this task bumps its counter, one call at a time.
                if n <= counter.2 {
                    broken.push(format!(
                        "INCR of task {} replied {n} after {}",
                        record.task, counter.2
                    ));
                }
                counter.0 += 1;
                counter.2 = n;
            }
            Outcome::Err {
                may_have_run: true, ..
            } => counter.1 += 1,
            _ => {}
        }
    }
    let (mut acked_total, mut maybe_total, mut final_total) = (0, 0, 0);
    for task in 0..TASKS {
        let (acked, maybe, last) = counters.get(&task).copied().unwrap_or_default();
        let value = admin
            .request(&Cmd::new("GET").arg(counter_key(scenario, task)))
            .await
            .expect("GET counter");
        let value: i64 = value.as_str().map_or(0, |s| s.parse().unwrap());
        if value < acked.max(last) || value > acked + maybe {
            broken.push(format!(
                "counter of task {task} is {value}: acknowledged {acked} (last reply {last}), \
                 failed but may have run {maybe}"
            ));
        }
        acked_total += acked;
        maybe_total += maybe;
        final_total += value;
    }

    println!(
        "\nscenario {scenario}: {TASKS} tasks, {} calls in {took:.1?}, {retries} retries",
        records.len()
    );
    println!(
        "  {:<13} {:<24} {:>6} {:>10}",
        "op", "outcome", "calls", "on server"
    );
    for ((op, label), (calls, present)) in &table {
        let present = match op {
            Op::Incr => "-".to_string(),
            _ => present.to_string(),
        };
        println!("  {:<13} {label:<24} {calls:>6} {present:>10}", op.name());
    }
    println!(
        "  counters: {acked_total} acknowledged + {maybe_total} may have run; \
         {final_total} on the server"
    );

    assert!(broken.is_empty(), "{scenario}:\n{}", broken.join("\n"));
    let failed = records
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Err { .. }))
        .count();
    // Otherwise the fault struck nothing and the checks proved little.
    assert!(failed > 0, "{scenario}: no call failed");
}

/// The load runs, the fault script runs beside it, the load goes on for a
/// while after the script healed, and a call afterwards must succeed: the
/// client recovered by itself. Gives every call's outcome and how long the
/// load ran.
async fn run_load(
    scenario: &'static str,
    client: &Valkey,
    fault: impl std::future::Future<Output = ()>,
) -> (Vec<Record>, Duration) {
    let load = Load::start(scenario, client);
    // Strike a load in full swing...
    load.after_calls(TASKS * 20).await;
    fault.await;
    // ...and let it run on after the heal.
    load.after_calls(TASKS * 40).await;
    let outcome = load.finish().await;
    client
        .set(format!("{scenario}:after"), "ok")
        .await
        .unwrap_or_else(|e| panic!("{scenario}: the client did not recover: {e}"));
    outcome
}

/// Builds the client, runs the load with `fault` striking it, and returns
/// what the callers saw and how many retries the client made.
async fn scenario(
    name: &'static str,
    port: u16,
    fault: impl std::future::Future<Output = ()>,
) -> (Vec<Record>, Duration, usize) {
    let retries = Arc::new(AtomicUsize::new(0));
    let client = faulty_client(port, retries.clone()).build().await.unwrap();
    let (records, took) = run_load(name, &client, fault).await;
    (records, took, retries.load(Ordering::Relaxed))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_killed_and_restarted() {
    // AOF with fsync always: a write the server acknowledged survives the
    // kill, so "every acknowledged write is on the server" must hold.
    let mut server = common::durable_server().await;
    let port = server.port();
    let fault = async {
        server.kill();
        // Down longer than a call's retries last.
        tokio::time::sleep(Duration::from_millis(500)).await;
        server.restart().await.expect("restart the server");
    };
    let (records, took, retries) = scenario("a-kill", port, fault).await;
    check(&server, "a-kill", &records, took, retries).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_black_holed_for_a_while() {
    let (server, proxy) = common::server_and_proxy().await;
    let port = proxy.port();
    // Longer than the deadline: calls time out on the silent connection,
    // which is retired; the fresh connections opened meanwhile are
    // swallowed in their handshake, until the black hole lifts. The
    // connections it swallowed stay silent for good.
    let fault = async {
        proxy.black_hole(true);
        tokio::time::sleep(Duration::from_millis(1300)).await;
        proxy.black_hole(false);
    };
    let (records, took, retries) = scenario("b-black-hole", port, fault).await;
    check(&server, "b-black-hole", &records, took, retries).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_reset_and_refused_for_a_while() {
    let (server, proxy) = common::server_and_proxy().await;
    let port = proxy.port();
    let fault = async {
        // A little latency first widens the window in which a request has
        // run but its reply is still on the way, so the reset surely cuts
        // some of those: their SETs are retried, refused until the retries
        // run out, and must still be reported as "may have run".
        proxy.set_latency(Duration::from_millis(20));
        tokio::time::sleep(Duration::from_millis(100)).await;
        proxy.refuse_connections(true);
        proxy.reset_all();
        proxy.set_latency(Duration::ZERO);
        tokio::time::sleep(Duration::from_millis(600)).await;
        proxy.refuse_connections(false);
    };
    let (records, took, retries) = scenario("c-refused", port, fault).await;
    check(&server, "c-refused", &records, took, retries).await;
}
