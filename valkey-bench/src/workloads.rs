//! The workloads: each takes a fixed number of operations and a time cap,
//! and stops at whichever comes first.

use std::time::{Duration, Instant};

use crate::clients::Client;
use crate::{GET_KEY, Result};

/// What one run of a workload measured.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sample {
    /// Operations completed (a pipeline of 100 SETs counts 100).
    pub ops: u64,
    /// Wall time of the measured part.
    pub elapsed: Duration,
    /// Median latency of one operation, when measured.
    pub p50: Option<Duration>,
    /// 99th percentile latency of one operation, when measured.
    pub p99: Option<Duration>,
}

impl Sample {
    /// Operations per second.
    pub fn ops_per_sec(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Stores the 64-byte value under [`GET_KEY`], so GETs read 64 bytes.
pub async fn prepare(client: &mut Client) -> Result<()> {
    client.set(GET_KEY).await
}

/// (a) `n` GETs one after the other, each timed.
pub async fn sequential_get(client: &mut Client, n: u64, cap: Duration) -> Result<Sample> {
    let mut latencies = Vec::with_capacity(n as usize);
    let start = Instant::now();
    let deadline = start + cap;
    let mut ops = 0;
    while ops < n {
        let t = Instant::now();
        if t >= deadline {
            break;
        }
        let value = client.get(GET_KEY).await?;
        latencies.push(t.elapsed());
        debug_assert_eq!(value.as_deref().map(<[u8]>::len), Some(64));
        ops += 1;
    }
    let elapsed = start.elapsed();
    latencies.sort_unstable();
    Ok(Sample {
        ops,
        elapsed,
        p50: percentile(&latencies, 0.50),
        p99: percentile(&latencies, 0.99),
    })
}

/// Only GETs, no timing: the body of the instruction-count runs.
pub async fn plain_gets(client: &mut Client, n: u64) -> Result<()> {
    for _ in 0..n {
        let value = client.get(GET_KEY).await?;
        if value.as_deref().map(<[u8]>::len) != Some(64) {
            return Err("GET did not return the 64-byte value".into());
        }
    }
    Ok(())
}

/// The keys of one pipeline of `size` SETs.
pub fn pipeline_keys(size: usize) -> Vec<String> {
    (0..size).map(|i| format!("bench:pipe:{i}")).collect()
}

/// (b) `batches` pipelines of `size` SETs each, one after the other.
pub async fn pipelined_set(
    client: &mut Client,
    batches: u64,
    size: usize,
    cap: Duration,
) -> Result<Sample> {
    let keys = pipeline_keys(size);
    let start = Instant::now();
    let deadline = start + cap;
    let mut ops = 0;
    for _ in 0..batches {
        if Instant::now() >= deadline {
            break;
        }
        client.set_pipeline(&keys).await?;
        ops += size as u64;
    }
    Ok(Sample {
        ops,
        elapsed: start.elapsed(),
        p50: None,
        p99: None,
    })
}

/// (c) `tasks` tasks sharing one client, `n` operations in all, each task
/// alternating GET and SET. Needs a shareable client.
pub async fn concurrent_mixed(
    client: &Client,
    tasks: usize,
    n: u64,
    cap: Duration,
) -> Result<Sample> {
    concurrent(client, tasks, n, cap, TaskOp::Mixed).await
}

/// The keys of (g): 1,000 keys of 64-byte values.
pub fn get_only_keys() -> Vec<String> {
    (0..1000).map(|i| format!("bench:g:{i}")).collect()
}

/// Stores the 64-byte value under every key of (g), in pipelines.
pub async fn prepare_get_only(client: &mut Client) -> Result<()> {
    for chunk in get_only_keys().chunks(100) {
        client.set_pipeline(chunk).await?;
    }
    Ok(())
}

/// (g) `tasks` tasks, each with its own clone of the client, `n` GETs in
/// all over 1,000 keys, each reply read as `Option<Vec<u8>>` (an owned copy,
/// as an application would keep it). Needs a shareable client.
pub async fn concurrent_gets(
    client: &Client,
    tasks: usize,
    n: u64,
    cap: Duration,
) -> Result<Sample> {
    let keys = std::sync::Arc::new(get_only_keys());
    concurrent(client, tasks, n, cap, TaskOp::GetOnly(keys)).await
}

/// How many keys workload (d) spreads over the cluster's slots.
pub const CLUSTER_KEYS: usize = 10_000;

/// The keys of (d): `key:0` to `key:9999`, no hash tags, so they hash all
/// over the 16,384 slots and every primary serves a third of them.
pub fn cluster_keys() -> Vec<String> {
    (0..CLUSTER_KEYS).map(|i| format!("key:{i}")).collect()
}

/// Stores the 64-byte value under every key of (d), in pipelines of 100
/// (through our cluster client: the peers' cluster pipelines are not used).
pub async fn prepare_cluster(client: &mut Client) -> Result<()> {
    for chunk in cluster_keys().chunks(100) {
        client.set_pipeline(chunk).await?;
    }
    Ok(())
}

/// (d) `tasks` tasks sharing one cluster client, `n` operations in all,
/// each task alternating GET (read as `Option<Vec<u8>>`, checked to be the
/// 64-byte value) and SET of the 64-byte value, over the keys of
/// [`cluster_keys`]. Each task walks the keys from its own starting point
/// with a stride of 7, so consecutive operations land on any primary.
pub async fn cluster_mixed(client: &Client, tasks: usize, n: u64, cap: Duration) -> Result<Sample> {
    let keys = std::sync::Arc::new(cluster_keys());
    concurrent(client, tasks, n, cap, TaskOp::KeysMixed(keys)).await
}

/// What each task of a concurrent workload does per operation.
#[derive(Clone)]
enum TaskOp {
    /// GET of the 64-byte key and SET of the task's own key, alternating.
    Mixed,
    /// GET of one of these keys, read as `Option<Vec<u8>>`.
    GetOnly(std::sync::Arc<Vec<String>>),
    /// GET (read as `Option<Vec<u8>>`) and SET, alternating, over these keys.
    KeysMixed(std::sync::Arc<Vec<String>>),
}

/// `tasks` tasks, each with its own handle on `client`, `n` operations in
/// all, stopped at `cap`.
async fn concurrent(
    client: &Client,
    tasks: usize,
    n: u64,
    cap: Duration,
    op: TaskOp,
) -> Result<Sample> {
    let per_task = n / tasks as u64;
    let start = Instant::now();
    let deadline = start + cap;
    let mut handles = Vec::with_capacity(tasks);
    for t in 0..tasks {
        let mut c = client
            .share()
            .ok_or("this client cannot be shared between tasks")?;
        let set_key = format!("bench:task:{t}");
        let op = op.clone();
        handles.push(tokio::spawn(async move {
            let mut done = 0u64;
            while done < per_task {
                if done.is_multiple_of(32) && Instant::now() >= deadline {
                    break;
                }
                match &op {
                    TaskOp::Mixed if done.is_multiple_of(2) => {
                        c.get(GET_KEY).await?;
                    }
                    TaskOp::Mixed => c.set(&set_key).await?,
                    TaskOp::GetOnly(keys) => {
                        let key = &keys[(t * 131 + done as usize * 7) % keys.len()];
                        if c.get_vec(key).await?.map(|v| v.len()) != Some(64) {
                            return Err("GET did not return the 64-byte value".into());
                        }
                    }
                    TaskOp::KeysMixed(keys) => {
                        let key = &keys[(t * 131 + done as usize * 7) % keys.len()];
                        if done % 2 == 1 {
                            c.set(key).await?;
                        } else if c.get_vec(key).await?.map(|v| v.len()) != Some(64) {
                            return Err("GET did not return the 64-byte value".into());
                        }
                    }
                }
                done += 1;
            }
            Ok::<u64, crate::BoxError>(done)
        }));
    }
    let mut ops = 0;
    for handle in handles {
        ops += handle.await??;
    }
    Ok(Sample {
        ops,
        elapsed: start.elapsed(),
        p50: None,
        p99: None,
    })
}

fn percentile(sorted: &[Duration], q: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let index = ((sorted.len() - 1) as f64 * q).round() as usize;
    Some(sorted[index])
}

/// The median of some numbers (the mean of the middle two for an even count).
pub fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    })
}
