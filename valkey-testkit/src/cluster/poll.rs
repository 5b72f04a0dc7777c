//! Shared by the fault-injection and migration helpers: which nodes to ask,
//! kept-open connections, deadlines and slot-ownership checks.

use std::fmt::Display;
use std::future::Future;
use std::io;
use std::ops::RangeInclusive;
use std::time::{Duration, Instant};

use valkey_client::{Cmd, Value};

use super::Cluster;
use crate::admin::{self, AdminConn};
use crate::server::Server;
use crate::slots::{SLOT_COUNT, SlotMap, parse_cluster_slots};

/// Poll interval of the fault-injection waits.
pub(super) const FAST_POLL: Duration = Duration::from_millis(10);

impl Cluster {
    /// Nodes that are running and not frozen, with their index.
    pub(super) fn live_nodes(&self) -> impl Iterator<Item = (usize, &Server)> {
        self.nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.pid().is_some() && !n.is_frozen())
    }

    /// The index of the node listening on `port`.
    pub(super) fn index_of_port(&self, port: u16) -> Option<usize> {
        self.nodes.iter().position(|n| n.port() == port)
    }

    /// Node `i`, if it exists (`InvalidInput` otherwise).
    pub(super) fn checked_node(&self, i: usize) -> io::Result<&Server> {
        self.nodes.get(i).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "node {i} out of range: the cluster has {}",
                    self.nodes.len()
                ),
            )
        })
    }

    /// Node `i`, if it exists, runs and is not frozen.
    pub(super) fn live_node(&self, i: usize) -> io::Result<&Server> {
        let node = self.checked_node(i)?;
        if node.pid().is_none() || node.is_frozen() {
            return Err(io::Error::new(
                io::ErrorKind::NotConnected,
                format!(
                    "node {i} (port {}) is not running or is frozen",
                    node.port()
                ),
            ));
        }
        Ok(node)
    }

    /// Checks that every running, non-frozen node maps every slot of `slots` to the
    /// primary on `port`. `Err` says why not (yet).
    pub(super) async fn owners_agree(
        &self,
        conns: &mut Conns,
        slots: &RangeInclusive<u16>,
        port: u16,
        deadline: Instant,
    ) -> Result<(), String> {
        let mut asked = 0;
        for (i, node) in self.live_nodes() {
            let reply = conns
                .call(i, node, &Cmd::new("CLUSTER").arg("SLOTS"), deadline)
                .await
                .map_err(|e| format!("node {i} (port {}): {e}", node.port()))?;
            let map = parse_cluster_slots(&reply).map_err(|e| e.to_string())?;
            if let Some(other) = owner_mismatch(&map, slots, port) {
                return Err(format!(
                    "node {i} (port {}) sees {other}, not port {port}",
                    node.port()
                ));
            }
            asked += 1;
        }
        if asked == 0 {
            return Err("no node is running (and not frozen)".to_owned());
        }
        Ok(())
    }
}

/// Describes the first part of `slots` that `map` does not give to `port`.
fn owner_mismatch(map: &SlotMap, slots: &RangeInclusive<u16>, port: u16) -> Option<String> {
    let mut next = u32::from(*slots.start());
    for range in map {
        let (start, end) = (u32::from(range.start), u32::from(range.end));
        if end < next || start > u32::from(*slots.end()) {
            continue;
        }
        if start > next {
            return Some(format!("slot {next} unassigned"));
        }
        if range.primary != port {
            return Some(format!("slots {range}"));
        }
        next = end + 1;
    }
    (next <= u32::from(*slots.end())).then(|| format!("slot {next} unassigned"))
}

/// Checks that `slots` is a non-empty range of valid slots.
pub(super) fn check_slots(slots: &RangeInclusive<u16>) -> io::Result<()> {
    if slots.is_empty() || *slots.end() >= SLOT_COUNT {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("bad slot range {slots:?}: want start <= end < {SLOT_COUNT}"),
        ));
    }
    Ok(())
}

/// A `TimedOut` error: `what` did not happen within `timeout`; `last` says why.
pub(super) fn timed_out(what: impl Display, timeout: Duration, last: impl Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        format!("{what} did not happen within {timeout:?}: {last}"),
    )
}

/// Runs `fut`, failing with `TimedOut` once `deadline` has passed.
pub(super) async fn before<T>(
    deadline: Instant,
    what: impl Display,
    fut: impl Future<Output = io::Result<T>>,
) -> io::Result<T> {
    tokio::time::timeout_at(tokio::time::Instant::from_std(deadline), fut)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, format!("{what}: deadline passed")))?
}

/// Sleeps for one poll interval, or until `deadline` if that is sooner.
pub(super) async fn pause(deadline: Instant) {
    let left = deadline.saturating_duration_since(Instant::now());
    tokio::time::sleep(left.min(FAST_POLL)).await;
}

/// Kept-open administrative connections, one per node index, reopened after a
/// connection failure. Every call is bounded by the caller's deadline.
pub(super) struct Conns {
    conns: Vec<Option<AdminConn>>,
}

impl Conns {
    /// No connections yet, room for `nodes` of them.
    pub(super) fn new(nodes: usize) -> Conns {
        Conns {
            conns: (0..nodes).map(|_| None).collect(),
        }
    }

    async fn conn(&mut self, i: usize, node: &Server) -> io::Result<&mut AdminConn> {
        let slot = self
            .conns
            .get_mut(i)
            .ok_or_else(|| io::Error::other(format!("no connection slot for node {i}")))?;
        if slot.as_ref().is_none_or(|c| c.port() != node.port()) {
            *slot = Some(AdminConn::connect(node.port(), &node.auth()).await?);
        }
        slot.as_mut()
            .ok_or_else(|| io::Error::other("connection vanished"))
    }

    /// Sends `cmd` to node `i` and returns the reply.
    pub(super) async fn call(
        &mut self,
        i: usize,
        node: &Server,
        cmd: &Cmd,
        deadline: Instant,
    ) -> io::Result<Value> {
        let what = format!("{} on port {}", cmd.name(), node.port());
        let result = before(deadline, what, async {
            self.conn(i, node).await?.call(cmd).await
        })
        .await;
        self.forget_on_failure(i, &result);
        result
    }

    /// Sends `cmds` to node `i` in one pipeline; one result per command.
    pub(super) async fn pipeline(
        &mut self,
        i: usize,
        node: &Server,
        cmds: &[Cmd],
        deadline: Instant,
    ) -> io::Result<Vec<io::Result<Value>>> {
        let what = format!(
            "pipeline of {} commands on port {}",
            cmds.len(),
            node.port()
        );
        let result = before(deadline, what, async {
            self.conn(i, node).await?.pipeline(cmds).await
        })
        .await;
        self.forget_on_failure(i, &result);
        result
    }

    /// Drops the connection to node `i` after a failure that was not a server error
    /// reply: the stream may be in doubt.
    fn forget_on_failure<T>(&mut self, i: usize, result: &io::Result<T>) {
        if let Err(e) = result
            && admin::reply_code(e).is_none()
            && let Some(slot) = self.conns.get_mut(i)
        {
            *slot = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slots::SlotRange;

    fn range(start: u16, end: u16, primary: u16) -> SlotRange {
        SlotRange {
            start,
            end,
            primary,
            replicas: Vec::new(),
        }
    }

    #[test]
    fn owner_mismatch_finds_gaps_and_other_owners() {
        let map = vec![range(0, 99, 1), range(100, 199, 2), range(300, 400, 2)];
        assert_eq!(owner_mismatch(&map, &(0..=99), 1), None);
        assert_eq!(owner_mismatch(&map, &(10..=20), 1), None);
        assert_eq!(owner_mismatch(&map, &(150..=199), 2), None);
        assert!(owner_mismatch(&map, &(50..=150), 1).is_some());
        assert_eq!(
            owner_mismatch(&map, &(150..=300), 2).as_deref(),
            Some("slot 200 unassigned")
        );
        assert_eq!(
            owner_mismatch(&map, &(401..=401), 2).as_deref(),
            Some("slot 401 unassigned")
        );
    }
}
