//! The cluster's layout as one node sees it: `CLUSTER SHARDS` parsed into
//! shards (slot ranges, a primary, replicas, each node's health and
//! availability zone) and a slot map that says which shard owns each slot.
//! Pure parsing, RESP2 and RESP3 alike; malformed replies are clear errors.

use super::slot::SLOTS;
use crate::error::{Error, ErrorKind, Result};
use crate::resp::Value;

/// One node of a shard, as `CLUSTER SHARDS` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NodeInfo {
    /// The node's id (40 hex characters).
    pub id: String,
    /// Where to connect: its endpoint, else its IP, else (an empty or `?`
    /// endpoint) the host of the node that answered.
    pub host: String,
    /// Its port (the TLS port when the cluster reports only that).
    pub port: u16,
    /// A primary, not a replica.
    pub primary: bool,
    /// Reported `online`: a node reported `failed` or `loading` gets no
    /// traffic.
    pub online: bool,
    /// The `availability-zone` the node reports, if any.
    pub availability_zone: Option<String>,
}

/// One shard: its slot ranges, its primary and its replicas.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Shard {
    /// Inclusive slot ranges.
    pub slots: Vec<(u16, u16)>,
    /// The primary; `None` while a failover has none to report.
    pub primary: Option<NodeInfo>,
    /// The replicas, in the order reported.
    pub replicas: Vec<NodeInfo>,
}

/// Parses a `CLUSTER SHARDS` reply; `answered_by` is the host of the node
/// that sent it (nodes that report no endpoint are on that host).
pub fn parse_shards(reply: &Value, answered_by: &str) -> Result<Vec<Shard>> {
    let shards = reply
        .as_slice()
        .ok_or_else(|| malformed("the reply is not an array"))?;
    shards
        .iter()
        .map(|shard| parse_shard(shard, answered_by))
        .collect()
}

fn parse_shard(shard: &Value, answered_by: &str) -> Result<Shard> {
    let bounds = shard
        .map_get("slots")
        .and_then(Value::as_slice)
        .ok_or_else(|| malformed("a shard without slots"))?;
    if bounds.len() % 2 != 0 {
        return Err(malformed("an odd number of slot bounds"));
    }
    let mut slots = Vec::with_capacity(bounds.len() / 2);
    for pair in bounds.chunks_exact(2) {
        let (start, end) = (slot_bound(&pair[0])?, slot_bound(&pair[1])?);
        if start > end {
            return Err(malformed("a slot range that ends before it starts"));
        }
        slots.push((start, end));
    }
    let nodes = shard
        .map_get("nodes")
        .and_then(Value::as_slice)
        .ok_or_else(|| malformed("a shard without nodes"))?;
    let mut parsed = Shard {
        slots,
        ..Shard::default()
    };
    for node in nodes {
        let node = parse_node(node, answered_by)?;
        if node.primary {
            parsed.primary = Some(node);
        } else {
            parsed.replicas.push(node);
        }
    }
    Ok(parsed)
}

fn parse_node(node: &Value, answered_by: &str) -> Result<NodeInfo> {
    let text = |key: &str| node.map_get(key).and_then(Value::as_str);
    let port = node
        .map_get("port")
        .or_else(|| node.map_get("tls-port"))
        .and_then(Value::as_int)
        .and_then(|p| u16::try_from(p).ok())
        .filter(|&p| p != 0)
        .ok_or_else(|| malformed("a node without a valid port"))?;
    let host = [text("endpoint"), text("ip")]
        .into_iter()
        .flatten()
        .find(|h| !h.is_empty() && *h != "?")
        .unwrap_or(answered_by)
        .to_string();
    let primary = match text("role") {
        Some("master" | "primary") => true,
        Some("replica" | "slave") => false,
        _ => return Err(malformed("a node with an unknown role")),
    };
    Ok(NodeInfo {
        id: text("id").unwrap_or_default().to_string(),
        host,
        port,
        primary,
        online: text("health") == Some("online"),
        availability_zone: text("availability-zone")
            .filter(|z| !z.is_empty())
            .map(str::to_string),
    })
}

/// Parses a `CLUSTER SLOTS` reply (for servers without `CLUSTER SHARDS`):
/// one entry per slot range, `[start, end, primary, replica...]`, each node
/// `[host, port, id, ...]`. Ranges with the same primary form one shard.
/// The reply says nothing of health: every node counts as online.
pub fn parse_slots(reply: &Value, answered_by: &str) -> Result<Vec<Shard>> {
    let ranges = reply
        .as_slice()
        .ok_or_else(|| malformed("the reply is not an array"))?;
    let mut shards: Vec<Shard> = Vec::new();
    for range in ranges {
        let items = range
            .as_slice()
            .filter(|items| items.len() >= 3)
            .ok_or_else(|| malformed("a slot range without its primary"))?;
        let (start, end) = (slot_bound(&items[0])?, slot_bound(&items[1])?);
        if start > end {
            return Err(malformed("a slot range that ends before it starts"));
        }
        let mut nodes = items[2..]
            .iter()
            .enumerate()
            .map(|(i, node)| slots_node(node, i == 0, answered_by));
        let primary = nodes.next().transpose()?;
        let replicas = nodes.collect::<Result<Vec<_>>>()?;
        let same = |s: &&mut Shard| {
            s.primary.as_ref().map(|p| (&p.host, p.port))
                == primary.as_ref().map(|p| (&p.host, p.port))
        };
        match shards.iter_mut().find(|s| same(s)) {
            Some(shard) => shard.slots.push((start, end)),
            None => shards.push(Shard {
                slots: vec![(start, end)],
                primary,
                replicas,
            }),
        }
    }
    Ok(shards)
}

fn slots_node(node: &Value, primary: bool, answered_by: &str) -> Result<NodeInfo> {
    let fields = node
        .as_slice()
        .filter(|f| f.len() >= 2)
        .ok_or_else(|| malformed("a node without host and port"))?;
    let host = fields[0]
        .as_str()
        .filter(|h| !h.is_empty() && *h != "?")
        .unwrap_or(answered_by)
        .to_string();
    let port = fields[1]
        .as_int()
        .and_then(|p| u16::try_from(p).ok())
        .filter(|&p| p != 0)
        .ok_or_else(|| malformed("a node without a valid port"))?;
    Ok(NodeInfo {
        id: fields
            .get(2)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        host,
        port,
        primary,
        online: true,
        availability_zone: None,
    })
}

fn slot_bound(value: &Value) -> Result<u16> {
    value
        .as_int()
        .and_then(|s| u16::try_from(s).ok())
        .filter(|&s| s < SLOTS)
        .ok_or_else(|| malformed("a slot outside 0..16384"))
}

fn malformed(what: &str) -> Error {
    Error::new(
        ErrorKind::InvalidResponse,
        format!("malformed cluster topology reply: {what}"),
    )
}

/// Which shard owns each slot.
#[derive(Debug, Clone)]
pub struct SlotMap {
    shards: Vec<Shard>,
    /// Per slot, the index of its shard in `shards`, or `u16::MAX`.
    owner: Vec<u16>,
}

impl SlotMap {
    /// The map of these shards. A slot two shards claim goes to the later
    /// one (a reply taken during a migration may show both).
    pub fn new(shards: Vec<Shard>) -> SlotMap {
        let mut owner = vec![u16::MAX; usize::from(SLOTS)];
        for (i, shard) in shards.iter().enumerate() {
            for &(start, end) in &shard.slots {
                owner[usize::from(start)..=usize::from(end)].fill(i as u16);
            }
        }
        SlotMap { shards, owner }
    }

    /// The shard that owns `slot`; `None` when no shard covers it.
    pub fn shard(&self, slot: u16) -> Option<&Shard> {
        let i = *self.owner.get(usize::from(slot))?;
        self.shards.get(usize::from(i))
    }

    /// Every shard.
    pub fn shards(&self) -> &[Shard] {
        &self.shards
    }

    /// The index in [`SlotMap::shards`] of the shard that owns `slot`.
    pub(crate) fn shard_index(&self, slot: u16) -> Option<usize> {
        let i = *self.owner.get(usize::from(slot))?;
        (usize::from(i) < self.shards.len()).then_some(usize::from(i))
    }

    /// Points `slot` at the primary `host:port`, as a `MOVED` says: a known
    /// primary takes the slot; a known replica is promoted in place (its
    /// shard's primary after a failover: every slot of that shard follows
    /// it); an unknown node becomes a new shard's primary. The slot ranges
    /// listed in the shards are left as they were read: the owner table is
    /// what routes.
    pub(crate) fn repoint(&mut self, slot: u16, host: &str, port: u16) {
        if slot >= SLOTS {
            return;
        }
        let is = |n: &NodeInfo| n.port == port && n.host == host;
        let found = self
            .shards
            .iter()
            .position(|s| s.primary.as_ref().is_some_and(is));
        let index = match found {
            Some(i) => i,
            None => match self.shards.iter().position(|s| s.replicas.iter().any(is)) {
                Some(i) => {
                    let shard = &mut self.shards[i];
                    let at = shard.replicas.iter().position(is).unwrap_or_default();
                    let mut promoted = shard.replicas.remove(at);
                    promoted.primary = true;
                    promoted.online = true;
                    if let Some(mut old) = shard.primary.replace(promoted) {
                        // Demoted or gone: no reads until a refresh says.
                        old.primary = false;
                        old.online = false;
                        shard.replicas.push(old);
                    }
                    i
                }
                None => {
                    self.shards.push(Shard {
                        slots: Vec::new(),
                        primary: Some(NodeInfo {
                            id: String::new(),
                            host: host.to_string(),
                            port,
                            primary: true,
                            online: true,
                            availability_zone: None,
                        }),
                        replicas: Vec::new(),
                    });
                    self.shards.len() - 1
                }
            },
        };
        self.owner[usize::from(slot)] = index as u16;
    }

    /// Whether `other` routes every slot to the same primary address.
    pub(crate) fn same_owners(&self, other: &SlotMap) -> bool {
        fn primary(map: &SlotMap, i: u16) -> Option<(&str, u16)> {
            map.shards
                .get(usize::from(i))
                .and_then(|s| s.primary.as_ref())
                .map(|p| (p.host.as_str(), p.port))
        }
        self.owner
            .iter()
            .zip(&other.owner)
            .all(|(&a, &b)| primary(self, a) == primary(other, b))
    }

    /// How many slots no shard covers.
    pub fn uncovered(&self) -> usize {
        self.owner.iter().filter(|&&i| i == u16::MAX).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn s(text: &str) -> Value {
        Value::BulkString(Bytes::copy_from_slice(text.as_bytes()))
    }

    fn node(fields: &[(&str, Value)]) -> Value {
        Value::Map(fields.iter().map(|(k, v)| (s(k), v.clone())).collect())
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
    fn parses_shards_with_health_zones_and_missing_endpoints() {
        let primary = node(&[
            ("id", s("a")),
            ("port", Value::Int(7000)),
            ("ip", s("127.0.0.1")),
            ("endpoint", s("?")),
            ("role", s("master")),
            ("health", s("online")),
            ("availability-zone", s("az-1")),
        ]);
        let replica = node(&[
            ("id", s("b")),
            ("port", Value::Int(7001)),
            ("endpoint", s("")),
            ("role", s("replica")),
            ("health", s("loading")),
        ]);
        let reply = Value::Array(vec![shard(&[0, 100, 200, 16383], vec![primary, replica])]);
        let shards = parse_shards(&reply, "node.example").unwrap();
        assert_eq!(shards[0].slots, [(0, 100), (200, 16383)]);
        let p = shards[0].primary.as_ref().unwrap();
        assert_eq!(
            (p.host.as_str(), p.port, p.online),
            ("127.0.0.1", 7000, true)
        );
        assert_eq!(p.availability_zone.as_deref(), Some("az-1"));
        let r = &shards[0].replicas[0];
        assert_eq!((r.host.as_str(), r.online), ("node.example", false));
        let map = SlotMap::new(shards);
        assert_eq!(map.uncovered(), 99);
        assert!(map.shard(150).is_none());
        assert_eq!(map.shard(16383).unwrap().slots.len(), 2);
    }

    #[test]
    fn malformed_replies_are_clear_errors() {
        let bad = [
            Value::Int(1),
            Value::Array(vec![shard(&[0], vec![])]),
            Value::Array(vec![shard(&[10, 5], vec![])]),
            Value::Array(vec![shard(&[0, 16384], vec![])]),
            Value::Array(vec![shard(&[0, 1], vec![node(&[("role", s("master"))])])]),
            Value::Array(vec![shard(
                &[0, 1],
                vec![node(&[("port", Value::Int(1)), ("role", s("boss"))])],
            )]),
        ];
        for reply in bad {
            let err = parse_shards(&reply, "h").unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidResponse, "{err}");
        }
    }
}
