//! Cluster slot maps: who serves which slots, as seen by one node.

use std::fmt;
use std::io;

use valkey_client::Value;

/// Number of hash slots in a Valkey cluster.
pub const SLOT_COUNT: u16 = 16384;

/// One contiguous range of slots and the nodes serving it, by port on 127.0.0.1.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SlotRange {
    /// First slot of the range.
    pub start: u16,
    /// Last slot of the range (inclusive).
    pub end: u16,
    /// Port of the primary serving the range.
    pub primary: u16,
    /// Ports of its replicas, sorted.
    pub replicas: Vec<u16>,
}

/// A whole slot map: ranges sorted by start slot.
pub type SlotMap = Vec<SlotRange>;

impl fmt::Display for SlotRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}-{} -> {} {:?}",
            self.start, self.end, self.primary, self.replicas
        )
    }
}

/// Splits the slots evenly among `primaries` primaries: `(start, end)` inclusive.
pub(crate) fn even_ranges(primaries: usize) -> Vec<(u16, u16)> {
    let n = primaries as u32;
    let total = u32::from(SLOT_COUNT);
    (0..n)
        .map(|i| ((i * total / n) as u16, ((i + 1) * total / n - 1) as u16))
        .collect()
}

fn bad(what: &str, value: &Value) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("CLUSTER SLOTS: bad {what}: {value:?}"),
    )
}

fn node_port(node: &Value) -> io::Result<u16> {
    let fields = node.as_slice().ok_or_else(|| bad("node", node))?;
    let port = fields
        .get(1)
        .and_then(Value::as_int)
        .ok_or_else(|| bad("node", node))?;
    u16::try_from(port).map_err(|_| bad("port", node))
}

/// Reduces a `CLUSTER SLOTS` reply to a [`SlotMap`].
pub(crate) fn parse_cluster_slots(reply: &Value) -> io::Result<SlotMap> {
    let entries = reply.as_slice().ok_or_else(|| bad("reply", reply))?;
    let mut map = Vec::with_capacity(entries.len());
    for entry in entries {
        let fields = entry.as_slice().ok_or_else(|| bad("entry", entry))?;
        let [start, end, primary, replicas @ ..] = fields else {
            return Err(bad("entry", entry));
        };
        let slot = |v: &Value| {
            v.as_int()
                .and_then(|s| u16::try_from(s).ok())
                .ok_or_else(|| bad("slot", v))
        };
        let mut replicas = replicas
            .iter()
            .map(node_port)
            .collect::<io::Result<Vec<u16>>>()?;
        replicas.sort_unstable();
        map.push(SlotRange {
            start: slot(start)?,
            end: slot(end)?,
            primary: node_port(primary)?,
            replicas,
        });
    }
    map.sort();
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn even_ranges_cover_all_slots() {
        for n in 1..=7 {
            let ranges = even_ranges(n);
            assert_eq!(ranges.len(), n);
            assert_eq!(ranges[0].0, 0);
            assert_eq!(ranges[n - 1].1, SLOT_COUNT - 1);
            for pair in ranges.windows(2) {
                assert_eq!(pair[0].1 + 1, pair[1].0);
            }
        }
        assert_eq!(
            even_ranges(3),
            vec![(0, 5460), (5461, 10921), (10922, 16383)]
        );
    }
}
