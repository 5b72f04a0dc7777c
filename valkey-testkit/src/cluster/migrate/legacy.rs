//! The classic resharding: `CLUSTER SETSLOT` and `MIGRATE`, as
//! `valkey-cli --cluster reshard` does it.

use std::io;
use std::ops::RangeInclusive;
use std::time::{Duration, Instant};

use bytes::Bytes;
use valkey_client::{Cmd, Value};

use crate::admin::AdminConn;
use crate::cluster::Cluster;
use crate::cluster::poll::{Conns, before};

/// Connections that share the `CLUSTER SETSLOT` commands of one step.
const SETSLOT_CONNECTIONS: usize = 32;
/// Slots whose keys are listed (and then moved) per pipeline.
const KEY_BATCH: usize = 256;
/// Keys listed by one `CLUSTER GETKEYSINSLOT`, and moved by one `MIGRATE`.
const KEYS_PER_MIGRATE: u32 = 100;
/// `MIGRATE`'s own timeout, in milliseconds.
const MIGRATE_TIMEOUT_MS: u32 = 5000;

impl Cluster {
    /// Moves `slots` from primary `from` to primary `to` the classic way, as
    /// `valkey-cli --cluster reshard` does, and returns the number of keys moved.
    ///
    /// 1. `CLUSTER SETSLOT <slot> IMPORTING <from-id>` on `to`, then
    ///    `CLUSTER SETSLOT <slot> MIGRATING <to-id>` on `from`, for every slot;
    /// 2. `CLUSTER GETKEYSINSLOT <slot> 100` and `MIGRATE 127.0.0.1 <to-port> "" 0 5000
    ///    [AUTH2 ...] KEYS ...` on `from` until no key is left in the slot;
    /// 3. `CLUSTER SETSLOT <slot> NODE <to-id>` on `to`, on `from`, then on every
    ///    other running, non-frozen primary;
    /// 4. waits until every running, non-frozen node gives the slots to `to`.
    ///
    /// The admin calls are pipelined, and the `SETSLOT` steps spread over parallel
    /// connections (1,024 slots with 2,000 keys take about a second). Clients may keep reading and writing the keys meanwhile:
    /// they get `ASK` (or `TRYAGAIN` for multi-key commands) redirections while a
    /// slot is open, `MOVED` after. The count is the keys handed to `MIGRATE`
    /// calls that succeeded; a key deleted by a client in between is counted too.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for an empty or out-of-range slot range, bad indices, or
    /// `from == to`; `NotConnected` if either node is not running or frozen; any
    /// refused command (for example `from` does not own a slot), with the slot;
    /// `TimedOut` if it does not finish within `timeout`. If `from` refuses to
    /// open the slots, `to`'s import is closed again; after later errors, slots
    /// may be left importing/migrating.
    pub async fn migrate_slots_legacy(
        &self,
        slots: RangeInclusive<u16>,
        from: usize,
        to: usize,
        timeout: Duration,
    ) -> io::Result<usize> {
        self.check_migration(&slots, from, to)?;
        let deadline = Instant::now() + timeout;
        let what = format!("legacy migration of slots {slots:?} from node {from} to node {to}");
        before(
            deadline,
            what,
            self.legacy(slots, from, to, deadline, timeout),
        )
        .await
    }

    async fn legacy(
        &self,
        slots: RangeInclusive<u16>,
        from: usize,
        to: usize,
        deadline: Instant,
        timeout: Duration,
    ) -> io::Result<usize> {
        let mut conns = Conns::new(self.nodes.len());
        let from_id = self.live_id(&mut conns, from, deadline).await?;
        let to_id = self.live_id(&mut conns, to, deadline).await?;
        let list: Vec<u16> = slots.clone().collect();
        self.setslot_all(to, &list, "IMPORTING", &from_id).await?;
        if let Err(e) = self.setslot_all(from, &list, "MIGRATING", &to_id).await {
            // No key has moved yet: close the import again (best effort).
            let _ = self.setslot_all(to, &list, "STABLE", "").await;
            return Err(e);
        }
        let moved = self
            .move_keys(&mut conns, from, to, &list, deadline)
            .await?;
        self.setslot_all(to, &list, "NODE", &to_id).await?;
        self.setslot_all(from, &list, "NODE", &to_id).await?;
        let others: Vec<usize> = self
            .live_nodes()
            .map(|(i, _)| i)
            .filter(|&i| i != from && i != to)
            .collect();
        for i in others {
            let role = self
                .role(&mut conns, i, deadline)
                .await
                .map_err(io::Error::other)?;
            if matches!(role.as_str(), "master" | "primary") {
                self.setslot_all(i, &list, "NODE", &to_id).await?;
            }
        }
        self.wait_owned(&mut conns, &slots, to, deadline, timeout)
            .await?;
        Ok(moved)
    }

    /// Sends `CLUSTER SETSLOT <slot> <state> <id>` (no id if empty) for every slot
    /// in `slots` to node `i`; fails on the first refusal.
    ///
    /// A primary with replicas answers `SETSLOT` only once they acknowledged it,
    /// one command at a time per connection, so the slots are spread over
    /// [`SETSLOT_CONNECTIONS`] connections, each with one pipeline: the
    /// acknowledgements then cover many commands at once.
    async fn setslot_all(&self, i: usize, slots: &[u16], state: &str, id: &str) -> io::Result<()> {
        let node = self.live_node(i)?;
        let (port, auth) = (node.port(), node.auth());
        let per_connection = slots.len().div_ceil(SETSLOT_CONNECTIONS).max(1);
        let mut tasks = tokio::task::JoinSet::new();
        for chunk in slots.chunks(per_connection) {
            let cmds: Vec<Cmd> = chunk
                .iter()
                .map(|&slot| {
                    let cmd = Cmd::new("CLUSTER").arg("SETSLOT").arg(slot).arg(state);
                    if id.is_empty() { cmd } else { cmd.arg(id) }
                })
                .collect();
            let (chunk, auth, state) = (chunk.to_vec(), auth.clone(), state.to_owned());
            tasks.spawn(async move {
                let mut conn = AdminConn::connect(port, &auth).await?;
                let replies = conn.pipeline(&cmds).await?;
                for (slot, reply) in chunk.iter().zip(replies) {
                    reply.map_err(|e| {
                        io::Error::new(
                            e.kind(),
                            format!(
                                "CLUSTER SETSLOT {slot} {state} on node {i} (port {port}): {e}"
                            ),
                        )
                    })?;
                }
                Ok::<(), io::Error>(())
            });
        }
        while let Some(joined) = tasks.join_next().await {
            joined.map_err(io::Error::other)??;
        }
        Ok(())
    }

    /// Moves every key of `slots` from node `from` to node `to` with `MIGRATE`;
    /// returns how many were moved.
    async fn move_keys(
        &self,
        conns: &mut Conns,
        from: usize,
        to: usize,
        slots: &[u16],
        deadline: Instant,
    ) -> io::Result<usize> {
        let source = self.live_node(from)?;
        let target = self.live_node(to)?;
        let target_port = target.port();
        let target_auth = target.auth();
        let auth_args = target_auth.migrate_args();
        let mut moved = 0;
        let mut pending = slots.to_vec();
        while !pending.is_empty() {
            let mut again = Vec::new();
            for chunk in pending.chunks(KEY_BATCH) {
                let listings: Vec<Cmd> = chunk
                    .iter()
                    .map(|&slot| {
                        Cmd::new("CLUSTER")
                            .arg("GETKEYSINSLOT")
                            .arg(slot)
                            .arg(KEYS_PER_MIGRATE)
                    })
                    .collect();
                let replies = conns.pipeline(from, source, &listings, deadline).await?;
                let mut migrates = Vec::new();
                let mut batches = Vec::new();
                for (&slot, reply) in chunk.iter().zip(replies) {
                    let keys = keys_of(slot, reply?)?;
                    if keys.is_empty() {
                        continue;
                    }
                    batches.push((slot, keys.len()));
                    migrates.push(
                        Cmd::new("MIGRATE")
                            .arg("127.0.0.1")
                            .arg(target_port)
                            .arg("")
                            .arg(0u8)
                            .arg(MIGRATE_TIMEOUT_MS)
                            .args(auth_args.iter())
                            .arg("KEYS")
                            .args(keys),
                    );
                }
                if migrates.is_empty() {
                    continue;
                }
                let replies = conns.pipeline(from, source, &migrates, deadline).await?;
                for ((slot, count), reply) in batches.into_iter().zip(replies) {
                    let reply = reply.map_err(|e| {
                        io::Error::new(e.kind(), format!("MIGRATE of slot {slot}: {e}"))
                    })?;
                    // `NOKEY`: clients deleted them meanwhile.
                    if reply.is_ok() {
                        moved += count;
                    }
                    again.push(slot);
                }
            }
            pending = again;
        }
        Ok(moved)
    }
}

/// The key names in a `CLUSTER GETKEYSINSLOT` reply.
fn keys_of(slot: u16, reply: Value) -> io::Result<Vec<Bytes>> {
    let bad = || {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("CLUSTER GETKEYSINSLOT {slot}: unexpected reply"),
        )
    };
    reply
        .as_slice()
        .ok_or_else(bad)?
        .iter()
        .map(|key| key.as_bytes().cloned().ok_or_else(bad))
        .collect()
}
