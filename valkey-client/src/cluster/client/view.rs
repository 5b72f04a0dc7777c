//! What the cluster client knows of the cluster: the slot map and a client
//! per node ([`View`]), swapped whole on every change so that routing reads
//! it without a lock; the startup nodes and the seeds; and the rules that
//! keep it from going backwards (a refresh never undoes a `MOVED` learned
//! while it ran).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

use crate::client::Valkey;
use crate::cluster::read_from::{ReadFrom, pick};
use crate::cluster::topology::{Shard, SlotMap};

/// `host:port`, the key of a node.
pub(super) fn node_key(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Opens (lazily) the client of the node at `host:port`.
pub(super) type MakeNode = Box<dyn Fn(&str, u16) -> Valkey + Send + Sync>;

/// One immutable picture of the cluster.
pub(super) struct View {
    pub(super) map: SlotMap,
    /// The client of each shard's primary, by shard index.
    primaries: Vec<Option<Valkey>>,
    /// Every node the map names, by `host:port`.
    nodes: HashMap<String, Valkey>,
}

impl View {
    /// A view of `map`, reusing the clients (and so the connections) of
    /// `old` for the nodes they share; `make` opens the others (lazily).
    fn new(map: SlotMap, old: Option<&View>, make: &dyn Fn(&str, u16) -> Valkey) -> View {
        let mut nodes = HashMap::new();
        let mut node = |host: &str, port: u16| -> Valkey {
            let key = node_key(host, port);
            if let Some(client) = nodes.get(&key) {
                return Valkey::clone(client);
            }
            let client = old
                .and_then(|old| old.nodes.get(&key).cloned())
                .unwrap_or_else(|| make(host, port));
            nodes.insert(key, client.clone());
            client
        };
        let mut primaries = Vec::with_capacity(map.shards().len());
        for shard in map.shards() {
            primaries.push(shard.primary.as_ref().map(|p| node(&p.host, p.port)));
            for replica in &shard.replicas {
                node(&replica.host, replica.port);
            }
        }
        View {
            map,
            primaries,
            nodes,
        }
    }

    /// The node that serves `slot`: its primary, or for a read-only
    /// command a node `read_from` chooses. `None`: no shard serves it.
    pub(super) fn node_for_slot(
        &self,
        slot: u16,
        readonly: bool,
        read_from: &ReadFrom,
        turn: &std::sync::atomic::AtomicUsize,
    ) -> Option<&Valkey> {
        let i = self.map.shard_index(slot)?;
        if readonly && *read_from != ReadFrom::Primary {
            let shard = &self.map.shards()[i];
            let turn = turn.fetch_add(1, Ordering::Relaxed);
            if let Some(info) = pick(shard, read_from, true, turn)
                && let Some(node) = self.nodes.get(&node_key(&info.host, info.port))
            {
                return Some(node);
            }
        }
        self.primaries.get(i)?.as_ref()
    }

    /// The node at `host:port`, if the view has it.
    pub(super) fn node(&self, host: &str, port: u16) -> Option<&Valkey> {
        self.nodes.get(&node_key(host, port))
    }

    /// The primaries, one per shard that has one.
    pub(super) fn primaries(&self) -> impl Iterator<Item = &Valkey> {
        self.primaries.iter().flatten()
    }

    /// Every node, primaries and replicas.
    pub(super) fn all_nodes(&self) -> impl Iterator<Item = &Valkey> {
        self.nodes.values()
    }

    /// A primary taken by `turn` (keyless commands spread over them).
    pub(super) fn any_primary(&self, turn: usize) -> Option<&Valkey> {
        let primaries: Vec<&Valkey> = self.primaries().collect();
        (!primaries.is_empty()).then(|| primaries[turn % primaries.len()])
    }

    /// The shards, for the startup nodes: their nodes' addresses,
    /// primaries first.
    fn addrs(&self) -> Vec<(String, u16)> {
        let shards = self.map.shards();
        let primaries = shards.iter().filter_map(|s: &Shard| s.primary.as_ref());
        let replicas = shards.iter().flat_map(|s| s.replicas.iter());
        let mut addrs: Vec<(String, u16)> = Vec::new();
        for node in primaries.chain(replicas) {
            if !addrs
                .iter()
                .any(|(h, p)| *h == node.host && *p == node.port)
            {
                addrs.push((node.host.clone(), node.port));
            }
        }
        addrs
    }
}

/// The view in use and how it changes.
pub(super) struct Topology {
    view: ArcSwap<View>,
    /// Serializes changes of the view, and remembers the `MOVED`s seen
    /// while a refresh runs.
    changes: Mutex<Changes>,
    /// The seeds the user gave: never forgotten.
    seeds: Vec<(String, u16)>,
    /// Where a refresh asks first. With dynamic startup nodes, every node
    /// of the last view read.
    startup: Mutex<Vec<(String, u16)>>,
    dynamic_startup_nodes: bool,
    /// `MOVED` replies since the last refresh (for `reinitialize_steps`).
    moved_since_refresh: AtomicU32,
    make: MakeNode,
}

#[derive(Default)]
struct Changes {
    /// `Some` while a refresh runs: the slots repointed by `MOVED` since it
    /// started, to apply again on top of what it read.
    moves: Option<HashMap<u16, (String, u16)>>,
}

impl Topology {
    pub(super) fn new(
        seeds: Vec<(String, u16)>,
        dynamic_startup_nodes: bool,
        make: MakeNode,
    ) -> Topology {
        let empty = View::new(SlotMap::new(Vec::new()), None, &*make);
        Topology {
            view: ArcSwap::from_pointee(empty),
            changes: Mutex::new(Changes::default()),
            startup: Mutex::new(seeds.clone()),
            seeds,
            dynamic_startup_nodes,
            moved_since_refresh: AtomicU32::new(0),
            make,
        }
    }

    /// The view in use.
    pub(super) fn view(&self) -> arc_swap::Guard<Arc<View>> {
        self.view.load()
    }

    /// The node at `host:port`: the view's, or a new one.
    pub(super) fn node(&self, host: &str, port: u16) -> Valkey {
        match self.view().node(host, port) {
            Some(node) => node.clone(),
            None => (self.make)(host, port),
        }
    }

    /// `MOVED` replies since the last refresh.
    pub(super) fn moved_since_refresh(&self) -> u32 {
        self.moved_since_refresh.load(Ordering::Relaxed)
    }

    /// Applies a `MOVED`: `slot` now belongs to `host:port`.
    pub(super) fn repoint(&self, slot: u16, host: &str, port: u16) {
        self.moved_since_refresh.fetch_add(1, Ordering::Relaxed);
        let mut changes = self.changes.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(moves) = &mut changes.moves {
            moves.insert(slot, (host.to_string(), port));
        }
        let old = self.view.load_full();
        if old
            .map
            .shard_index(slot)
            .and_then(|i| old.map.shards()[i].primary.as_ref())
            .is_some_and(|p| p.host == host && p.port == port)
        {
            // Another caller applied the same MOVED already.
            return;
        }
        let mut map = old.map.clone();
        map.repoint(slot, host, port);
        self.view
            .store(Arc::new(View::new(map, Some(&old), &*self.make)));
    }

    /// A refresh starts: `MOVED`s from now on are remembered.
    pub(super) fn refresh_started(&self) {
        let mut changes = self.changes.lock().unwrap_or_else(|p| p.into_inner());
        changes.moves = Some(HashMap::new());
    }

    /// A refresh ended without a new view.
    pub(super) fn refresh_failed(&self) {
        let mut changes = self.changes.lock().unwrap_or_else(|p| p.into_inner());
        changes.moves = None;
    }

    /// Installs the map a refresh read, after applying again every `MOVED`
    /// seen since it started (those are newer than what it read). Returns
    /// whether any slot changed owner.
    pub(super) fn install(&self, mut map: SlotMap) -> bool {
        let mut changes = self.changes.lock().unwrap_or_else(|p| p.into_inner());
        for (slot, (host, port)) in changes.moves.take().unwrap_or_default() {
            map.repoint(slot, &host, port);
        }
        let old = self.view.load_full();
        let changed = !old.map.same_owners(&map);
        let view = View::new(map, Some(&old), &*self.make);
        // Nodes that left the cluster: their connections end (calls in
        // flight still get their replies).
        for (key, node) in &old.nodes {
            if !view.nodes.contains_key(key) {
                node.close_connection();
            }
        }
        if self.dynamic_startup_nodes {
            let mut startup = self.startup.lock().unwrap_or_else(|p| p.into_inner());
            *startup = view.addrs();
        }
        self.view.store(Arc::new(view));
        self.moved_since_refresh.store(0, Ordering::Relaxed);
        drop(changes);
        changed
    }

    /// Drops a node from the startup nodes (its retry was spent on
    /// connection failures). It comes back with the next refresh that
    /// reports it, when the startup nodes are dynamic.
    /// Whether it was there to drop.
    pub(super) fn drop_startup_node(&self, host: &str, port: u16) -> bool {
        let mut startup = self.startup.lock().unwrap_or_else(|p| p.into_inner());
        let before = startup.len();
        startup.retain(|(h, p)| !(h == host && *p == port));
        startup.len() < before
    }

    /// Where a refresh asks, in order: the startup nodes, then the seeds
    /// that are not among them (so an emptied startup list still leads
    /// back to the cluster).
    pub(super) fn refresh_sources(&self) -> Vec<(String, u16)> {
        let mut sources = self
            .startup
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        // Spread the load of refreshes over the nodes, primaries first.
        let primaries = self.view().primaries().count().min(sources.len());
        fastrand::shuffle(&mut sources[..primaries]);
        for seed in &self.seeds {
            if !sources.contains(seed) {
                sources.push(seed.clone());
            }
        }
        // Nodes that failed to connect last time are asked last.
        let view = self.view();
        sources.sort_by_key(|(host, port)| view.node(host, *port).is_some_and(Valkey::is_failing));
        sources
    }
}
