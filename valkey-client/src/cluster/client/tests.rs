//! The cluster client's pure parts, without a server: the view's repoints
//! (MOVED), a refresh that must not undo them, where refreshes ask, and
//! which of several views a refresh takes.

use bytes::Bytes;

use super::discover::agreed;
use super::view::{Topology, node_key};
use crate::client::Valkey;
use crate::cluster::topology::{SlotMap, parse_slots};
use crate::config::ConnectionConfig;
use crate::node::options::NodeOptions;
use crate::resp::Value;

/// A slot map from `CLUSTER SLOTS`-style rows: (start, end, [primary port,
/// replica ports...]), all on 127.0.0.1.
fn map(rows: &[(u16, u16, &[u16])]) -> SlotMap {
    let node = |port: u16| {
        Value::Array(vec![
            Value::BulkString(Bytes::from_static(b"127.0.0.1")),
            Value::Int(i64::from(port)),
        ])
    };
    let reply = Value::Array(
        rows.iter()
            .map(|(start, end, ports)| {
                let mut row = vec![Value::Int(i64::from(*start)), Value::Int(i64::from(*end))];
                row.extend(ports.iter().map(|&p| node(p)));
                Value::Array(row)
            })
            .collect(),
    );
    SlotMap::new(parse_slots(&reply, "127.0.0.1").unwrap())
}

fn topology(seeds: &[u16]) -> Topology {
    let make = |host: &str, port: u16| {
        let options = NodeOptions::new(ConnectionConfig::tcp(host, port));
        Valkey::from_options(&options, None, None)
    };
    Topology::new(
        seeds
            .iter()
            .map(|&p| ("127.0.0.1".to_string(), p))
            .collect(),
        true,
        Box::new(make),
    )
}

fn owner(topology: &Topology, slot: u16) -> Option<u16> {
    let view = topology.view();
    let shard = view.map.shard(slot)?;
    shard.primary.as_ref().map(|p| p.port)
}

#[test]
fn moved_repoints_a_slot_and_a_promoted_replica_takes_its_whole_shard() {
    let t = topology(&[7000]);
    t.install(map(&[
        (0, 8191, &[7000, 7003]),
        (8192, 16383, &[7001, 7004]),
    ]));
    // To a known primary: only that slot moves.
    t.repoint(5, "127.0.0.1", 7001);
    assert_eq!(owner(&t, 5), Some(7001));
    assert_eq!(owner(&t, 6), Some(7000));
    // To the replica of the shard (a failover): every slot of the shard.
    t.repoint(100, "127.0.0.1", 7003);
    assert_eq!(owner(&t, 100), Some(7003));
    assert_eq!(owner(&t, 8191), Some(7003));
    assert_eq!(owner(&t, 5), Some(7001));
    // To an unknown node: added, that slot only.
    t.repoint(9000, "127.0.0.1", 7010);
    assert_eq!(owner(&t, 9000), Some(7010));
    assert_eq!(owner(&t, 9001), Some(7001));
    assert!(t.view().node("127.0.0.1", 7010).is_some());
    assert_eq!(t.moved_since_refresh(), 3);
}

#[test]
fn a_refresh_does_not_undo_a_moved_seen_while_it_read() {
    let t = topology(&[7000]);
    t.install(map(&[(0, 8191, &[7000]), (8192, 16383, &[7001])]));
    t.refresh_started();
    // The refresh read the old layout; meanwhile slot 10 moved.
    t.repoint(10, "127.0.0.1", 7001);
    let changed = t.install(map(&[(0, 8191, &[7000]), (8192, 16383, &[7001])]));
    assert_eq!(owner(&t, 10), Some(7001), "the MOVED was undone");
    // Nothing changed compared with the view in use, which had the MOVED.
    assert!(!changed);
    assert_eq!(t.moved_since_refresh(), 0);
    // A MOVED before the refresh started is the refresh's to judge.
    t.repoint(11, "127.0.0.1", 7001);
    t.refresh_started();
    t.install(map(&[(0, 8191, &[7000]), (8192, 16383, &[7001])]));
    assert_eq!(owner(&t, 11), Some(7000));
}

#[test]
fn refreshes_ask_the_startup_nodes_then_the_seeds() {
    let t = topology(&[6999]);
    let key = |(h, p): &(String, u16)| node_key(h, *p);
    // Before any view: the seeds.
    assert_eq!(
        t.refresh_sources().iter().map(key).collect::<Vec<_>>(),
        ["127.0.0.1:6999"]
    );
    t.install(map(&[(0, 8191, &[7000, 7002]), (8192, 16383, &[7001])]));
    let sources: Vec<String> = t.refresh_sources().iter().map(key).collect();
    assert_eq!(sources.len(), 4);
    assert_eq!(sources.last().map(String::as_str), Some("127.0.0.1:6999"));
    // Primaries before replicas.
    assert!(sources[..2].contains(&"127.0.0.1:7000".to_string()));
    assert!(sources[..2].contains(&"127.0.0.1:7001".to_string()));
    // Every startup node dropped: the seeds are still there.
    for port in [7000, 7001, 7002] {
        assert!(t.drop_startup_node("127.0.0.1", port));
    }
    assert!(!t.drop_startup_node("127.0.0.1", 7000));
    assert_eq!(
        t.refresh_sources().iter().map(key).collect::<Vec<_>>(),
        ["127.0.0.1:6999"]
    );
}

#[test]
fn a_refresh_takes_the_view_most_nodes_agree_on() {
    let new = map(&[(0, 8191, &[7000]), (8192, 16383, &[7001])]);
    let old = map(&[(0, 16383, &[7000])]);
    let partial = map(&[(0, 8191, &[7000])]);
    let views = vec![
        ("a".to_string(), old.clone()),
        ("b".to_string(), new.clone()),
        ("c".to_string(), new.clone()),
    ];
    let (_, chosen) = agreed(views).unwrap();
    assert!(chosen.same_owners(&new));
    // One each: the one that covers more slots.
    let views = vec![("a".to_string(), partial), ("b".to_string(), old.clone())];
    let (from, _) = agreed(views).unwrap();
    assert_eq!(from, "b");
    assert!(agreed(Vec::new()).is_none());
}
