//! Placing shard channels: on the owner the view names (not a node that
//! just dropped them, for a few reads), or where a `MOVED` pointed; and
//! checking placements against the view.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{DISTRUST_READS, Router, ShardLink, Unplaced, fail, key, round_wait};
use crate::cluster::key_slot;
use crate::error::{Error, ErrorKind};
use crate::pubsub::link::{self, LinkCmd, Target};
use crate::pubsub::message::Kind;
use crate::pubsub::state::{Gap, Outage, Subs, Ticket};

impl Router {
    /// Places what waits for an owner; what has none yet waits for the
    /// next topology read.
    pub(super) async fn place(&mut self) {
        let mut groups: HashMap<(String, u16), Vec<Unplaced>> = HashMap::new();
        let mut waiting = Vec::new();
        for mut item in std::mem::take(&mut self.unplaced) {
            match self.owner(&mut item) {
                Some(owner) => groups.entry(owner).or_default().push(item),
                None => waiting.push(item),
            }
        }
        for ((host, port), items) in groups {
            self.assign(&host, port, items).await;
        }
        if waiting.is_empty() {
            self.rounds = 0;
            return;
        }
        self.unplaced = waiting;
        // Another round (a topology read, then placing) after a wait that
        // grows while the owner stays unknown.
        if self.retry_at.is_none() {
            self.retry_at = Some(Instant::now() + round_wait(self.rounds));
            self.rounds = self.rounds.saturating_add(1);
        }
    }

    /// Where `item` goes now, if known.
    fn owner(&self, item: &mut Unplaced) -> Option<(String, u16)> {
        if let Some(redirect) = item.redirect.take() {
            return Some(redirect);
        }
        let (host, port) = self.cluster.slot_primary_addr(key_slot(&item.name))?;
        if item.reads < DISTRUST_READS && item.distrust.as_deref() == Some(&key(&host, port)) {
            return None;
        }
        Some((host, port))
    }

    /// Subscribes `items` on the link of `host:port`, opening it if needed.
    async fn assign(&mut self, host: &str, port: u16, items: Vec<Unplaced>) {
        let addr = key(host, port);
        let link = self.links.entry(addr.clone()).or_insert_with(|| ShardLink {
            handle: link::spawn(
                self.shared.clone(),
                Target::Fixed(self.cluster.node_config(host, port)),
                None,
                Some(self.reports.clone()),
                (),
            ),
            down: None,
        });
        // One command per user call, one per outage (reported as one gap).
        let mut by_ticket: Vec<(Arc<Ticket>, Vec<Bytes>)> = Vec::new();
        let mut lost: Vec<Bytes> = Vec::new();
        let mut outage: Option<Outage> = None;
        for item in items {
            self.placed.insert(item.name.clone(), addr.clone());
            match (item.ticket, item.outage) {
                (Some(ticket), _) => {
                    match by_ticket.iter_mut().find(|(t, _)| Arc::ptr_eq(t, &ticket)) {
                        Some((_, names)) => names.push(item.name),
                        None => by_ticket.push((ticket, vec![item.name])),
                    }
                }
                (None, found) => {
                    if let Some(found) = found
                        && outage.as_ref().is_none_or(|o| found.since < o.since)
                    {
                        outage = Some(found);
                    }
                    lost.push(item.name);
                }
            }
        }
        let mut cmds: Vec<LinkCmd> = by_ticket
            .into_iter()
            .map(|(ticket, names)| LinkCmd::Subscribe {
                kind: Kind::Shard,
                names,
                ticket: Some(ticket),
                gap: None,
            })
            .collect();
        if !lost.is_empty() {
            let gap = outage.map(|outage| {
                let mut names = Subs::default();
                names.get_mut(Kind::Shard).extend(lost.iter().cloned());
                Gap::new(outage, names)
            });
            cmds.push(LinkCmd::Subscribe {
                kind: Kind::Shard,
                names: lost,
                ticket: None,
                gap,
            });
        }
        for cmd in cmds {
            if let Err(mpsc::error::SendError(cmd)) = link.handle.commands.send(cmd).await {
                fail(cmd);
            }
        }
    }

    /// Moves every placed channel whose slot the view gives to another
    /// primary.
    pub(super) async fn verify(&mut self) {
        let mut moves: Vec<(Bytes, String)> = Vec::new();
        for (name, addr) in &self.placed {
            if let Some((host, port)) = self.cluster.slot_primary_addr(key_slot(name))
                && key(&host, port) != *addr
            {
                moves.push((name.clone(), addr.clone()));
            }
        }
        if moves.is_empty() {
            return;
        }
        let mut releases: HashMap<String, Vec<Bytes>> = HashMap::new();
        for (name, from) in moves {
            self.placed.remove(&name);
            let outage = self
                .links
                .get(&from)
                .and_then(|link| link.down.clone())
                .unwrap_or_else(|| Outage {
                    since: Instant::now(),
                    cause: Error::new(
                        ErrorKind::Moved,
                        format!("the slot of a shard channel moved away from {from}"),
                    ),
                });
            self.unplaced.push(Unplaced {
                name: name.clone(),
                ticket: None,
                outage: Some(outage),
                redirect: None,
                distrust: None,
                reads: 0,
            });
            releases.entry(from).or_default().push(name);
        }
        for (from, names) in releases {
            if let Some(link) = self.links.get(&from) {
                let cmd = LinkCmd::Unsubscribe {
                    kind: Kind::Shard,
                    names,
                    done: None,
                    user: false,
                };
                let _ = link.handle.commands.send(cmd).await;
            }
        }
        self.drop_idle_links();
        self.place().await;
    }

    /// Closes the links that hold nothing any more.
    pub(super) fn drop_idle_links(&mut self) {
        let placed = &self.placed;
        self.links
            .retain(|addr, _| placed.values().any(|a| a == addr));
    }
}
