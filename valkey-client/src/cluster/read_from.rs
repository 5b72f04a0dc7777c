//! Which node of a shard serves a command: always the primary for writes;
//! for reads, the [`ReadFrom`] choice. Pure, tested as a table.

use super::topology::{NodeInfo, Shard};

/// Where read-only commands go (valkey-py's `read_from_replicas`, with the
/// choices valkey-glide offers). Writes always go to the primary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReadFrom {
    /// Every command to the primary (the default; `read_from_replicas`
    /// false).
    #[default]
    Primary,
    /// Reads to an online replica, taking turns; the primary when none is
    /// online.
    PreferReplica,
    /// Reads taking turns over the primary and its online replicas
    /// (valkey-py's `read_from_replicas` true).
    RoundRobin,
    /// Reads to an online replica in this availability zone (the
    /// `availability-zone` the servers report), taking turns; else any
    /// online replica; else the primary.
    AzAffinity(String),
}

/// The node of `shard` that serves a command: the primary for a write (or
/// when there is no usable replica), else as `read_from` says. `turn`
/// spreads reads (a counter the caller increments per request). `None`
/// when the shard has no primary to report and the command needs one.
pub fn pick<'a>(
    shard: &'a Shard,
    read_from: &ReadFrom,
    readonly: bool,
    turn: usize,
) -> Option<&'a NodeInfo> {
    let primary = shard.primary.as_ref().filter(|p| p.online);
    if !readonly || *read_from == ReadFrom::Primary {
        return primary;
    }
    let online = || shard.replicas.iter().filter(|r| r.online);
    let nth = |mut nodes: Vec<&'a NodeInfo>| {
        (!nodes.is_empty()).then(|| {
            let i = turn % nodes.len();
            nodes.swap_remove(i)
        })
    };
    match read_from {
        ReadFrom::Primary => primary,
        ReadFrom::PreferReplica => nth(online().collect()).or(primary),
        ReadFrom::RoundRobin => nth(primary.into_iter().chain(online()).collect()),
        ReadFrom::AzAffinity(zone) => nth(online()
            .filter(|r| r.availability_zone.as_deref() == Some(zone.as_str()))
            .collect())
        .or_else(|| nth(online().collect()))
        .or(primary),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resp::Value;
    use bytes::Bytes;

    /// A shard from `(port, primary, online, zone)` rows, through the real
    /// parser so the fields are filled as in production.
    fn shard(nodes: &[(u16, bool, bool, &str)]) -> Shard {
        let s = |t: &str| Value::BulkString(Bytes::copy_from_slice(t.as_bytes()));
        let nodes = nodes
            .iter()
            .map(|&(port, primary, online, zone)| {
                Value::Map(vec![
                    (s("port"), Value::Int(i64::from(port))),
                    (s("ip"), s("127.0.0.1")),
                    (s("role"), s(if primary { "master" } else { "replica" })),
                    (s("health"), s(if online { "online" } else { "failed" })),
                    (s("availability-zone"), s(zone)),
                ])
            })
            .collect();
        let reply = Value::Array(vec![Value::Map(vec![
            (
                s("slots"),
                Value::Array(vec![Value::Int(0), Value::Int(16383)]),
            ),
            (s("nodes"), Value::Array(nodes)),
        ])]);
        super::super::topology::parse_shards(&reply, "h")
            .unwrap()
            .remove(0)
    }

    fn ports(shard: &Shard, read_from: &ReadFrom, readonly: bool) -> Vec<Option<u16>> {
        (0..4)
            .map(|turn| pick(shard, read_from, readonly, turn).map(|n| n.port))
            .collect()
    }

    #[test]
    fn picks_by_read_from() {
        let full = shard(&[
            (1, true, true, "a"),
            (2, false, true, "b"),
            (3, false, true, "a"),
        ]);
        let az_a = ReadFrom::AzAffinity("a".into());
        let az_c = ReadFrom::AzAffinity("c".into());
        let all = [
            ReadFrom::Primary,
            ReadFrom::PreferReplica,
            ReadFrom::RoundRobin,
            az_a.clone(),
        ];
        for read_from in &all {
            // Writes always to the primary.
            assert_eq!(
                ports(&full, read_from, false),
                [Some(1); 4],
                "{read_from:?}"
            );
        }
        assert_eq!(ports(&full, &ReadFrom::Primary, true), [Some(1); 4]);
        assert_eq!(
            ports(&full, &ReadFrom::PreferReplica, true),
            [Some(2), Some(3), Some(2), Some(3)]
        );
        assert_eq!(
            ports(&full, &ReadFrom::RoundRobin, true),
            [Some(1), Some(2), Some(3), Some(1)]
        );
        assert_eq!(ports(&full, &az_a, true), [Some(3); 4]);
        // No replica in that zone: any online replica.
        assert_eq!(
            ports(&full, &az_c, true),
            [Some(2), Some(3), Some(2), Some(3)]
        );
    }

    #[test]
    fn failed_nodes_get_no_traffic() {
        let replicas_down = shard(&[(1, true, true, "a"), (2, false, false, "a")]);
        assert_eq!(
            ports(&replicas_down, &ReadFrom::PreferReplica, true),
            [Some(1); 4]
        );
        let az = ReadFrom::AzAffinity("a".into());
        assert_eq!(ports(&replicas_down, &az, true), [Some(1); 4]);
        let primary_down = shard(&[(1, true, false, "a"), (2, false, true, "a")]);
        assert_eq!(ports(&primary_down, &ReadFrom::Primary, true), [None; 4]);
        assert_eq!(
            ports(&primary_down, &ReadFrom::RoundRobin, true),
            [Some(2); 4]
        );
        assert_eq!(
            ports(&primary_down, &ReadFrom::PreferReplica, false),
            [None; 4]
        );
    }
}
