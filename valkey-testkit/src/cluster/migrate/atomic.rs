//! Valkey 9's atomic slot migration: `CLUSTER MIGRATESLOTS`, watched with
//! `CLUSTER GETSLOTMIGRATIONS`.

use std::collections::HashSet;
use std::io;
use std::ops::RangeInclusive;
use std::time::{Duration, Instant};

use valkey_client::{Cmd, Value};

use crate::cluster::Cluster;
use crate::cluster::poll::{Conns, before, pause, timed_out};

impl Cluster {
    /// Moves `slots` from primary `from` to primary `to` with Valkey 9's atomic
    /// slot migration: `CLUSTER MIGRATESLOTS SLOTSRANGE <start> <end> NODE <to-id>`
    /// sent to `from`. The target copies the slots' keys, follows the writes made
    /// meanwhile, and takes the slots over in one step; clients never see `ASK`.
    ///
    /// Polls `CLUSTER GETSLOTMIGRATIONS` on `from` every ~10 ms until the new export
    /// job reports `success`, then waits until every running, non-frozen node gives
    /// the slots to `to`.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for an empty or out-of-range slot range, bad indices, or
    /// `from == to`; `NotConnected` if either node is not running or frozen; the
    /// server's refusal; an error with the job's message if it ends `failed` or
    /// `cancelled`; `TimedOut` if it does not finish within `timeout`.
    pub async fn migrate_slots_atomic(
        &self,
        slots: RangeInclusive<u16>,
        from: usize,
        to: usize,
        timeout: Duration,
    ) -> io::Result<()> {
        self.check_migration(&slots, from, to)?;
        let deadline = Instant::now() + timeout;
        let what = format!("atomic migration of slots {slots:?} from node {from} to node {to}");
        before(
            deadline,
            what,
            self.atomic(slots, from, to, deadline, timeout),
        )
        .await
    }

    async fn atomic(
        &self,
        slots: RangeInclusive<u16>,
        from: usize,
        to: usize,
        deadline: Instant,
        timeout: Duration,
    ) -> io::Result<()> {
        let mut conns = Conns::new(self.nodes.len());
        let source = self.live_node(from)?;
        let to_id = self.live_id(&mut conns, to, deadline).await?;
        let list = Cmd::new("CLUSTER").arg("GETSLOTMIGRATIONS");
        let earlier: HashSet<String> = jobs(&conns.call(from, source, &list, deadline).await?)?
            .into_iter()
            .map(|job| job.name)
            .collect();
        conns
            .call(
                from,
                source,
                &Cmd::new("CLUSTER")
                    .arg("MIGRATESLOTS")
                    .arg("SLOTSRANGE")
                    .arg(*slots.start())
                    .arg(*slots.end())
                    .arg("NODE")
                    .arg(&to_id),
                deadline,
            )
            .await?;
        let what = format!("atomic migration of slots {slots:?} to node {to}");
        loop {
            let reply = conns.call(from, source, &list, deadline).await?;
            let job = jobs(&reply)?.into_iter().find(|job| {
                !earlier.contains(&job.name)
                    && job.operation.eq_ignore_ascii_case("EXPORT")
                    && job.target == to_id
            });
            let last = match job {
                Some(job) if job.state == "success" => break,
                Some(job) if matches!(job.state.as_str(), "failed" | "cancelled") => {
                    return Err(io::Error::other(format!(
                        "{what} ended {}: {}",
                        job.state, job.message
                    )));
                }
                Some(job) => format!("job {} is {}", job.name, job.state),
                None => "the export job is not listed yet".to_owned(),
            };
            if Instant::now() >= deadline {
                return Err(timed_out(what, timeout, last));
            }
            pause(deadline).await;
        }
        self.wait_owned(&mut conns, &slots, to, deadline, timeout)
            .await
    }
}

/// One entry of `CLUSTER GETSLOTMIGRATIONS`.
#[derive(Debug, Clone, PartialEq)]
struct Job {
    name: String,
    operation: String,
    target: String,
    state: String,
    message: String,
}

/// The entries of a `CLUSTER GETSLOTMIGRATIONS` reply (an array of maps; flat
/// key/value arrays under RESP2).
fn jobs(reply: &Value) -> io::Result<Vec<Job>> {
    let entries = reply.as_slice().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("CLUSTER GETSLOTMIGRATIONS: unexpected reply {reply:?}"),
        )
    })?;
    Ok(entries
        .iter()
        .map(|entry| {
            let field = |key: &str| {
                entry
                    .map_get(key)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            };
            Job {
                name: field("name"),
                operation: field("operation"),
                target: field("target_node"),
                state: field("state"),
                message: field("message"),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn s(text: &str) -> Value {
        Value::BulkString(Bytes::copy_from_slice(text.as_bytes()))
    }

    #[test]
    fn jobs_reads_maps_and_flat_arrays() {
        let fields = [
            ("name", "abc"),
            ("operation", "EXPORT"),
            ("slot_ranges", "0-1023"),
            ("target_node", "t1"),
            ("state", "success"),
            ("message", ""),
        ];
        let map = Value::Map(fields.iter().map(|(k, v)| (s(k), s(v))).collect());
        let flat = Value::Array(fields.iter().flat_map(|(k, v)| [s(k), s(v)]).collect());
        let want = Job {
            name: "abc".into(),
            operation: "EXPORT".into(),
            target: "t1".into(),
            state: "success".into(),
            message: String::new(),
        };
        for entry in [map, flat] {
            let parsed = jobs(&Value::Array(vec![entry])).unwrap();
            assert_eq!(parsed, vec![want.clone()]);
        }
        assert!(jobs(&s("nope")).is_err());
    }
}
