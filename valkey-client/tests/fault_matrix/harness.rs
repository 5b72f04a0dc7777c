//! The fault matrix's workload and its checks: 16 tasks doing SET with
//! unique values, INCR on per-task counters and GET, every outcome
//! recorded; then the data on the server is checked against what the
//! callers were told.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use valkey_client::Commands;
use valkey_client::{Delivery, Error, Valkey, ValkeyCluster};

/// Tasks in the workload.
pub const TASKS: usize = 16;
/// Keys each task writes (its values are unique).
const KEYS_PER_TASK: usize = 20;
/// Slack allowed past a call's deadline.
const DEADLINE_SLACK: Duration = Duration::from_millis(50);

/// Either client: the workload is the same for both.
#[derive(Clone)]
pub enum Client {
    Standalone(Valkey),
    Cluster(ValkeyCluster),
}

impl Client {
    async fn set(&self, key: &str, value: &str) -> Result<(), Error> {
        match self {
            Client::Standalone(c) => c.set(key, value).await,
            Client::Cluster(c) => c.set(key, value).await,
        }
    }

    async fn incr(&self, key: &str) -> Result<i64, Error> {
        match self {
            Client::Standalone(c) => c.incr(key).await,
            Client::Cluster(c) => c.incr(key).await,
        }
    }

    async fn get(&self, key: &str) -> Result<Option<String>, Error> {
        match self {
            Client::Standalone(c) => c.get(key).await,
            Client::Cluster(c) => c.get(key).await,
        }
    }
}

/// What one call did.
struct Call {
    op: Op,
    key: String,
    /// The value a SET wrote.
    value: String,
    took: Duration,
    ended: Instant,
    result: Result<(), Error>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Set,
    Incr,
    Get,
}

/// The workload under way.
pub struct Load {
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<Vec<Call>>>,
    started: Instant,
}

/// `key` of task `t`: `{prefix}:{t}:..`, so a cluster spreads them.
fn set_key(prefix: &str, task: usize, i: usize) -> String {
    format!("{prefix}:s:{task}:{}", i % KEYS_PER_TASK)
}

fn counter_key(prefix: &str, task: usize) -> String {
    format!("{prefix}:c:{task}")
}

/// Starts the workload: each task at most `max_ops` calls, 1 ms apart.
pub fn start(client: &Client, prefix: &str, max_ops: usize) -> Load {
    let stop = Arc::new(AtomicBool::new(false));
    let tasks = (0..TASKS)
        .map(|task| {
            let (client, stop, prefix) = (client.clone(), stop.clone(), prefix.to_string());
            tokio::spawn(async move {
                let mut calls = Vec::new();
                for i in 0..max_ops {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let (op, key, value) = match i % 3 {
                        0 => (Op::Set, set_key(&prefix, task, i), format!("{task}-{i}")),
                        1 => (Op::Incr, counter_key(&prefix, task), String::new()),
                        _ => (Op::Get, set_key(&prefix, task, i), String::new()),
                    };
                    let begun = Instant::now();
                    let result = match op {
                        Op::Set => client.set(&key, &value).await,
                        Op::Incr => client.incr(&key).await.map(|_| ()),
                        Op::Get => client.get(&key).await.map(|_| ()),
                    };
                    calls.push(Call {
                        op,
                        key,
                        value,
                        took: begun.elapsed(),
                        ended: Instant::now(),
                        result,
                    });
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                calls
            })
        })
        .collect();
    Load {
        stop,
        tasks,
        started: Instant::now(),
    }
}

/// One row of the matrix.
#[derive(Debug, Default)]
pub struct Row {
    pub scenario: String,
    pub calls: usize,
    pub lost: usize,
    pub duplicates: usize,
    pub past_deadline: usize,
    pub panics: usize,
    /// Errors the callers saw, by kind and delivery.
    pub errors: HashMap<String, usize>,
    /// From the fault to the first success after the last failure.
    pub recovery: Option<Duration>,
    /// Notes (what was checked where a rule was relaxed).
    pub note: String,
}

impl Row {
    /// Whether the row shows a broken promise.
    pub fn failed(&self) -> bool {
        self.lost > 0 || self.duplicates > 0 || self.past_deadline > 0 || self.panics > 0
    }

    /// The row as a Markdown table line.
    pub fn line(&self) -> String {
        let mut errors: Vec<_> = self.errors.iter().collect();
        errors.sort();
        let errors = if errors.is_empty() {
            "none".to_string()
        } else {
            errors
                .iter()
                .map(|(k, n)| format!("{n} {k}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let recovery = self
            .recovery
            .map_or("-".to_string(), |d| format!("{} ms", d.as_millis()));
        format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            self.scenario,
            self.calls,
            self.lost,
            self.duplicates,
            self.past_deadline,
            self.panics,
            errors,
            recovery
        )
    }
}

/// The table's header.
pub fn header() -> String {
    "| scenario | calls | acknowledged writes lost | non-idempotent writes applied twice | \
     calls past deadline + 50 ms | panics | errors the callers saw | recovery |\n\
     |---|---|---|---|---|---|---|---|"
        .to_string()
}

/// Stops the workload, then checks the server's data (read through
/// `checker`, a client that is not under the fault any more) against what
/// the callers were told. `deadline`: the calls' deadline, if any; `fault`:
/// when the fault began; `lossy_before`: writes acknowledged before this
/// moment may be lost by the server's design (asynchronous replication
/// before a failover), so they are not counted.
pub async fn finish(
    scenario: &str,
    load: Load,
    checker: &Client,
    prefix: &str,
    deadline: Option<Duration>,
    fault: Instant,
    lossy_window: Option<(Instant, Instant)>,
) -> Row {
    load.stop.store(true, Ordering::Relaxed);
    let mut row = Row {
        scenario: scenario.to_string(),
        ..Row::default()
    };
    let mut calls: Vec<(usize, Call)> = Vec::new();
    for (task, handle) in load.tasks.into_iter().enumerate() {
        match handle.await {
            Ok(done) => calls.extend(done.into_iter().map(|c| (task, c))),
            Err(_) => row.panics += 1,
        }
    }
    let _ = load.started;
    row.calls = calls.len();
    let mut last_failure: Option<Instant> = None;
    for (_, call) in &calls {
        if let Some(limit) = deadline
            && call.took > limit + DEADLINE_SLACK
        {
            row.past_deadline += 1;
        }
        if let Err(err) = &call.result {
            let name = format!("{:?}/{:?}", err.kind(), err.delivery());
            *row.errors.entry(name).or_default() += 1;
            last_failure = Some(last_failure.map_or(call.ended, |t| t.max(call.ended)));
        }
    }
    row.recovery = last_failure.and_then(|last| {
        calls
            .iter()
            .filter(|(_, c)| c.result.is_ok() && c.ended > last)
            .map(|(_, c)| c.ended)
            .min()
            .map(|first_ok| first_ok.saturating_duration_since(fault))
    });
    let in_lossy_window = |t: Instant| lossy_window.is_some_and(|(from, to)| t >= from && t <= to);

    // SET: the server holds the last acknowledged value of each key, or
    // the value of a later SET that may have run.
    let mut per_key: HashMap<&str, Vec<&Call>> = HashMap::new();
    for (_, call) in calls.iter().filter(|(_, c)| c.op == Op::Set) {
        per_key.entry(&call.key).or_default().push(call);
    }
    for (key, sets) in per_key {
        let Some(last_ok) = sets.iter().rposition(|c| c.result.is_ok()) else {
            continue;
        };
        if in_lossy_window(sets[last_ok].ended) {
            continue;
        }
        let allowed: Vec<&str> = std::iter::once(sets[last_ok].value.as_str())
            .chain(
                sets[last_ok + 1..]
                    .iter()
                    .filter(|c| c.result.as_ref().is_err_and(may_have_run))
                    .map(|c| c.value.as_str()),
            )
            .collect();
        let on_server = read_back(checker, key).await;
        if !on_server.as_deref().is_some_and(|v| allowed.contains(&v)) {
            row.lost += 1;
            let _ = write!(row.note, "{key}: {on_server:?} not in {allowed:?}; ");
        }
    }

    // INCR: acknowledged <= on the server <= acknowledged + may have run.
    for task in 0..TASKS {
        let key = counter_key(prefix, task);
        let incrs: Vec<&Call> = calls
            .iter()
            .filter(|(t, c)| *t == task && c.op == Op::Incr)
            .map(|(_, c)| c)
            .collect();
        if incrs.is_empty() {
            continue;
        }
        let acked = incrs.iter().filter(|c| c.result.is_ok()).count() as i64;
        let maybe = incrs
            .iter()
            .filter(|c| c.result.as_ref().is_err_and(may_have_run))
            .count() as i64;
        let lossy = incrs.iter().any(|c| in_lossy_window(c.ended));
        let on_server: i64 = read_back(checker, &key)
            .await
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if on_server < acked && !lossy {
            row.lost += 1;
            let _ = write!(row.note, "{key}: {on_server} < {acked} acknowledged; ");
        }
        if on_server > acked + maybe {
            row.duplicates += 1;
            let _ = write!(
                row.note,
                "{key}: {on_server} > {acked} acknowledged + {maybe} may have run; "
            );
        }
    }
    row
}

/// A value, read with patience (the checker may reconnect first).
async fn read_back(checker: &Client, key: &str) -> Option<String> {
    let mut last = None;
    for _ in 0..50 {
        match checker.get(key).await {
            Ok(value) => return value,
            Err(err) => last = Some(err),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("could not read {key} back: {last:?}");
}

/// A failed SET or INCR that may have changed the data: its reply was lost.
/// (An error reply means it did not apply; `NotSent` that it never left.)
fn may_have_run(err: &Error) -> bool {
    err.delivery() == Delivery::SentNoReply
}
