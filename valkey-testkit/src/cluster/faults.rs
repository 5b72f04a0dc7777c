//! Node ids, slot owners and failovers: what cluster client tests need around a
//! killed, frozen or demoted primary.

use std::io;
use std::time::{Duration, Instant};

use valkey_client::{Cmd, Value};

use super::Cluster;
use super::poll::{Conns, pause, timed_out};
use crate::admin;
use crate::server::info_field;
use crate::slots::{SLOT_COUNT, parse_cluster_slots};

impl Cluster {
    /// The node id of node `i`: `CLUSTER MYID` when the node is running and not
    /// frozen, else the id it reported at startup (node ids survive restarts, as
    /// the node keeps its `nodes.conf`).
    ///
    /// # Errors
    ///
    /// If `i` is out of range (`InvalidInput`) or the node does not answer.
    pub async fn node_id(&self, i: usize) -> io::Result<String> {
        let node = self.checked_node(i)?;
        if node.pid().is_some() && !node.is_frozen() {
            return admin::call_str(node.port(), &node.auth(), &["CLUSTER", "MYID"]).await;
        }
        self.ids
            .get(i)
            .cloned()
            .ok_or_else(|| io::Error::other(format!("no node id recorded for node {i}")))
    }

    /// The index of the node that owns `slot` now, as seen by the first running,
    /// non-frozen node (`CLUSTER SLOTS`). Right after a failover or migration the
    /// nodes may disagree for a moment; see [`wait_for_failover`](Self::wait_for_failover)
    /// and [`wait_until_consistent`](Self::wait_until_consistent) to wait for them.
    ///
    /// # Errors
    ///
    /// `InvalidInput` if `slot >= 16384`, `NotFound` if no node serves it, or an
    /// error if no node answers.
    pub async fn primary_index_for_slot(&self, slot: u16) -> io::Result<usize> {
        if slot >= SLOT_COUNT {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("slot {slot} out of range 0..{SLOT_COUNT}"),
            ));
        }
        let map = self.slot_map().await?;
        let range = map
            .iter()
            .find(|r| (r.start..=r.end).contains(&slot))
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("slot {slot} is not served"),
                )
            })?;
        self.index_of_port(range.primary).ok_or_else(|| {
            io::Error::other(format!(
                "slot {slot} is served by port {}, not a node of this cluster",
                range.primary
            ))
        })
    }

    /// Waits for the automatic failover of node `old_primary`, a primary that was
    /// killed, stopped or [frozen](crate::Server::freeze).
    ///
    /// Polls every running, non-frozen node other than `old_primary` every ~10 ms
    /// (`CLUSTER SHARDS`) until all of them report the same node of `old_primary`'s
    /// shard, so one of its former replicas, as the online primary of the shard's
    /// slots. Returns that node's index and the instant at which a poll first found
    /// all survivors agreeing (at most one poll, ~10 ms plus round trips, after
    /// they did).
    ///
    /// # Errors
    ///
    /// `InvalidInput` if `old_primary` is out of range; `TimedOut`, with the last
    /// reason, if the survivors do not agree within `timeout`.
    pub async fn wait_for_failover(
        &self,
        old_primary: usize,
        timeout: Duration,
    ) -> io::Result<(usize, Instant)> {
        let old_port = self.checked_node(old_primary)?.port();
        let deadline = Instant::now() + timeout;
        let mut conns = Conns::new(self.nodes.len());
        loop {
            let last = match self
                .failover_agreed(&mut conns, old_primary, old_port, deadline)
                .await
            {
                Ok(new) => return Ok((new, Instant::now())),
                Err(why) => why,
            };
            if Instant::now() >= deadline {
                return Err(timed_out(
                    format_args!("failover of node {old_primary} (port {old_port})"),
                    timeout,
                    last,
                ));
            }
            pause(deadline).await;
        }
    }

    /// One poll of [`wait_for_failover`](Self::wait_for_failover): the index of the
    /// new primary if every survivor agrees on it.
    async fn failover_agreed(
        &self,
        conns: &mut Conns,
        old_primary: usize,
        old_port: u16,
        deadline: Instant,
    ) -> Result<usize, String> {
        let mut agreed: Option<usize> = None;
        for (i, node) in self.live_nodes().filter(|&(i, _)| i != old_primary) {
            let reply = conns
                .call(i, node, &Cmd::new("CLUSTER").arg("SHARDS"), deadline)
                .await
                .map_err(|e| format!("node {i} (port {}): {e}", node.port()))?;
            let port = new_shard_primary(&reply, old_port)
                .map_err(|why| format!("node {i} (port {}): {why}", node.port()))?;
            let new = self
                .index_of_port(port)
                .ok_or_else(|| format!("new primary port {port} is not a node of this cluster"))?;
            match agreed {
                Some(seen) if seen != new => {
                    return Err(format!(
                        "node {i} sees node {new} as the new primary, an earlier node saw node {seen}"
                    ));
                }
                _ => agreed = Some(new),
            }
        }
        agreed.ok_or_else(|| "no surviving node is running (and not frozen)".to_owned())
    }

    /// Promotes node `replica` with `CLUSTER FAILOVER` (a coordinated, manual
    /// failover: no writes are lost) and waits until it reports role `master`, its
    /// old primary (if running and not frozen) reports role `slave`, and every
    /// running, non-frozen node gives it the slots the old primary served.
    ///
    /// # Errors
    ///
    /// `InvalidInput` if `replica` is out of range or not a replica; the server's
    /// error if it refuses the failover; `TimedOut`, with the last reason, if the
    /// cluster does not get there within `timeout`.
    pub async fn manual_failover(&self, replica: usize, timeout: Duration) -> io::Result<()> {
        let node = self.live_node(replica)?;
        let deadline = Instant::now() + timeout;
        let mut conns = Conns::new(self.nodes.len());
        let info = conns
            .call(replica, node, &info_replication(), deadline)
            .await?;
        let info = info.as_str().unwrap_or_default();
        let old_port = match (info_field(info, "role"), info_field(info, "master_port")) {
            (Some("slave" | "replica"), Some(port)) => port.parse::<u16>().ok(),
            _ => None,
        }
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "node {replica} (port {}) is not a replica: {info:?}",
                    node.port()
                ),
            )
        })?;
        let slots = conns
            .call(replica, node, &Cmd::new("CLUSTER").arg("SLOTS"), deadline)
            .await?;
        let taken: Vec<_> = parse_cluster_slots(&slots)?
            .into_iter()
            .filter(|r| r.primary == old_port)
            .map(|r| r.start..=r.end)
            .collect();
        conns
            .call(
                replica,
                node,
                &Cmd::new("CLUSTER").arg("FAILOVER"),
                deadline,
            )
            .await?;
        let old_index = self.index_of_port(old_port);
        loop {
            let last = match self
                .manual_failover_done(&mut conns, replica, old_index, &taken, deadline)
                .await
            {
                Ok(()) => return Ok(()),
                Err(why) => why,
            };
            if Instant::now() >= deadline {
                return Err(timed_out(
                    format_args!("manual failover to node {replica} (port {})", node.port()),
                    timeout,
                    last,
                ));
            }
            pause(deadline).await;
        }
    }

    /// One poll of [`manual_failover`](Self::manual_failover).
    async fn manual_failover_done(
        &self,
        conns: &mut Conns,
        replica: usize,
        old_index: Option<usize>,
        taken: &[std::ops::RangeInclusive<u16>],
        deadline: Instant,
    ) -> Result<(), String> {
        let role = self.role(conns, replica, deadline).await?;
        if !matches!(role.as_str(), "master" | "primary") {
            return Err(format!("node {replica} still has role {role}"));
        }
        if let Some(old) = old_index.filter(|&i| self.live_node(i).is_ok()) {
            let role = self.role(conns, old, deadline).await?;
            if !matches!(role.as_str(), "slave" | "replica") {
                return Err(format!("old primary node {old} still has role {role}"));
            }
        }
        let port = self.nodes[replica].port();
        for slots in taken {
            self.owners_agree(conns, slots, port, deadline).await?;
        }
        Ok(())
    }

    /// The `role` field of `INFO replication` on node `i`.
    pub(super) async fn role(
        &self,
        conns: &mut Conns,
        i: usize,
        deadline: Instant,
    ) -> Result<String, String> {
        let node = &self.nodes[i];
        let reply = conns
            .call(i, node, &info_replication(), deadline)
            .await
            .map_err(|e| format!("node {i} (port {}): {e}", node.port()))?;
        info_field(reply.as_str().unwrap_or_default(), "role")
            .map(str::to_owned)
            .ok_or_else(|| format!("node {i}: INFO replication has no role"))
    }
}

/// The text of field `key` of a map reply, or `""`.
fn text<'a>(map: &'a Value, key: &str) -> &'a str {
    map.map_get(key).and_then(Value::as_str).unwrap_or("")
}

fn info_replication() -> Cmd {
    Cmd::new("INFO").arg("replication")
}

/// In a `CLUSTER SHARDS` reply, the port of the online primary of the shard that
/// holds the node on `old_port`, if it is another node and the shard has slots.
fn new_shard_primary(reply: &Value, old_port: u16) -> Result<u16, String> {
    let shards = reply
        .as_slice()
        .ok_or_else(|| format!("CLUSTER SHARDS: unexpected reply {reply:?}"))?;
    for shard in shards {
        let nodes = shard
            .map_get("nodes")
            .and_then(Value::as_slice)
            .ok_or_else(|| format!("CLUSTER SHARDS: shard without nodes: {shard:?}"))?;
        let port = |n: &Value| {
            n.map_get("port")
                .and_then(Value::as_int)
                .and_then(|p| u16::try_from(p).ok())
        };
        if !nodes.iter().any(|n| port(n) == Some(old_port)) {
            continue;
        }
        let has_slots = shard
            .map_get("slots")
            .and_then(Value::as_slice)
            .is_some_and(|s| !s.is_empty());
        if !has_slots {
            return Err(format!("the shard of port {old_port} has no slots"));
        }
        let primaries: Vec<u16> = nodes
            .iter()
            .filter(|n| matches!(text(n, "role"), "master" | "primary"))
            .filter(|n| text(n, "health") != "fail")
            .filter_map(port)
            .collect();
        return match primaries.as_slice() {
            [p] if *p != old_port => Ok(*p),
            [_] => Err(format!("port {old_port} is still the shard's primary")),
            [] => Err(format!(
                "the shard of port {old_port} has no online primary"
            )),
            _ => Err(format!(
                "the shard of port {old_port} has several online primaries: {primaries:?}"
            )),
        };
    }
    Err(format!("no shard holds port {old_port}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn s(text: &str) -> Value {
        Value::BulkString(Bytes::copy_from_slice(text.as_bytes()))
    }

    fn node(port: i64, role: &str, health: &str) -> Value {
        Value::Map(vec![
            (s("port"), Value::Int(port)),
            (s("role"), s(role)),
            (s("health"), s(health)),
        ])
    }

    fn shard(slots: &[i64], nodes: Vec<Value>) -> Value {
        Value::Map(vec![
            (
                s("slots"),
                Value::Array(slots.iter().map(|&x| Value::Int(x)).collect()),
            ),
            (s("nodes"), Value::Array(nodes)),
        ])
    }

    #[test]
    fn new_shard_primary_follows_the_failover() {
        let other = shard(&[5461, 16383], vec![node(2, "master", "online")]);
        let before = Value::Array(vec![
            other.clone(),
            shard(
                &[0, 5460],
                vec![node(1, "master", "fail"), node(4, "replica", "online")],
            ),
        ]);
        assert!(new_shard_primary(&before, 1).is_err());
        let after = Value::Array(vec![
            other,
            shard(
                &[0, 5460],
                vec![node(1, "master", "fail"), node(4, "master", "online")],
            ),
        ]);
        assert_eq!(new_shard_primary(&after, 1), Ok(4));
        assert!(new_shard_primary(&after, 9).is_err());
        let alive = Value::Array(vec![shard(&[0, 5460], vec![node(1, "master", "online")])]);
        assert!(new_shard_primary(&alive, 1).is_err());
    }
}
