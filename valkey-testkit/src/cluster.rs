//! [`Cluster`]: a Valkey cluster of real processes on 127.0.0.1.

use std::io;
use std::time::{Duration, Instant};

use crate::admin;
use crate::config::ServerConfig;
use crate::server::{Server, info_field};
use crate::slots::{SlotMap, SlotRange, even_ranges, parse_cluster_slots};

mod faults;
mod migrate;
mod poll;

/// Poll interval while waiting for the cluster to converge.
const POLL: Duration = Duration::from_millis(50);

/// How to start a [`Cluster`].
///
/// ```
/// use valkey_testkit::ClusterConfig;
/// let config = ClusterConfig { primaries: 3, replicas_per_primary: 1, ..Default::default() }
///     .config("maxmemory", "10mb");
/// ```
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// Number of primaries; the 16384 slots are split evenly among them (default 3).
    pub primaries: usize,
    /// Replicas of each primary (default 1).
    pub replicas_per_primary: usize,
    /// `cluster-node-timeout` (default 2 s).
    pub node_timeout: Duration,
    /// How long to wait for the cluster to become ready (default 30 s).
    pub ready_timeout: Duration,
    /// Base configuration of every node (overrides, password, ...). The cluster
    /// directives are added to it.
    pub server: ServerConfig,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            primaries: 3,
            replicas_per_primary: 1,
            node_timeout: Duration::from_millis(2000),
            ready_timeout: Duration::from_secs(30),
            server: ServerConfig::new(),
        }
    }
}

impl ClusterConfig {
    /// `primaries` primaries with `replicas_per_primary` replicas each, other settings
    /// default.
    pub fn new(primaries: usize, replicas_per_primary: usize) -> Self {
        ClusterConfig {
            primaries,
            replicas_per_primary,
            ..Default::default()
        }
    }

    /// Adds a configuration directive to every node (see [`ServerConfig::config`]).
    /// `cluster-node-timeout` given here sets [`ClusterConfig::node_timeout`]
    /// (the kit writes that directive itself).
    pub fn config(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        let (key, value) = (key.into(), value.into());
        if key.eq_ignore_ascii_case("cluster-node-timeout")
            && let Ok(ms) = value.trim().parse::<u64>()
        {
            self.node_timeout = Duration::from_millis(ms);
            return self;
        }
        self.server = self.server.config(key, value);
        self
    }

    fn node_config(&self) -> ServerConfig {
        let mut config = self
            .server
            .clone()
            .config("cluster-enabled", "yes")
            .config("cluster-config-file", "nodes.conf")
            .config(
                "cluster-node-timeout",
                self.node_timeout.as_millis().to_string(),
            );
        if let Some(password) = self.server.password.clone() {
            config = config.config(
                "masterauth",
                format!("\"{}\"", password.replace('"', "\\\"")),
            );
        }
        config
    }
}

/// A running cluster. Nodes `0..primaries` are the primaries, in slot order; the
/// replicas of primary `i` follow, at `primaries + i * replicas_per_primary ..`.
/// Roles are as assigned at startup (a failover does not renumber nodes).
///
/// Every node is killed when the cluster is dropped; [frozen](Server::freeze) nodes
/// are thawed first.
///
/// Fault injection: freeze or kill nodes, then [`wait_for_failover`](Self::wait_for_failover);
/// [`manual_failover`](Self::manual_failover); move slots with
/// [`migrate_slots_legacy`](Self::migrate_slots_legacy) or
/// [`migrate_slots_atomic`](Self::migrate_slots_atomic). The helpers that query
/// the cluster skip nodes that are stopped, killed or frozen.
#[derive(Debug)]
pub struct Cluster {
    nodes: Vec<Server>,
    primaries: usize,
    replicas_per_primary: usize,
    expected: SlotMap,
    /// Node ids (`CLUSTER MYID`) recorded at startup, by node index.
    ids: Vec<String>,
}

impl Cluster {
    /// Starts the nodes, builds the cluster with `CLUSTER ADDSLOTSRANGE`, `CLUSTER MEET`
    /// and `CLUSTER REPLICATE`, and waits until every node reports `cluster_state:ok`,
    /// all nodes agree on the slot map, and every replica's link is up.
    pub async fn start(config: ClusterConfig) -> io::Result<Cluster> {
        if config.primaries == 0 || config.primaries > usize::from(crate::slots::SLOT_COUNT) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "primaries must be 1..=16384",
            ));
        }
        let deadline = Instant::now() + config.ready_timeout;
        let count = config.primaries * (1 + config.replicas_per_primary);
        let node_config = config.node_config();
        let mut tasks = tokio::task::JoinSet::new();
        for index in 0..count {
            let node_config = node_config.clone();
            tasks.spawn(async move { (index, Server::start(node_config).await) });
        }
        let mut started: Vec<Option<Server>> = (0..count).map(|_| None).collect();
        while let Some(joined) = tasks.join_next().await {
            let (index, server) = joined.map_err(io::Error::other)?;
            started[index] = Some(server?);
        }
        let nodes: Vec<Server> = started.into_iter().flatten().collect();
        let ranges = even_ranges(config.primaries);
        let mut expected: SlotMap = ranges
            .iter()
            .enumerate()
            .map(|(i, &(start, end))| {
                let first = config.primaries + i * config.replicas_per_primary;
                let mut replicas: Vec<u16> = nodes[first..first + config.replicas_per_primary]
                    .iter()
                    .map(Server::port)
                    .collect();
                replicas.sort_unstable();
                SlotRange {
                    start,
                    end,
                    primary: nodes[i].port(),
                    replicas,
                }
            })
            .collect();
        expected.sort();
        let mut cluster = Cluster {
            nodes,
            primaries: config.primaries,
            replicas_per_primary: config.replicas_per_primary,
            expected,
            ids: Vec::new(),
        };
        tracing::debug!("cluster: nodes started");
        cluster.ids = cluster.build(&ranges, deadline).await?;
        tracing::debug!("cluster: ready");
        Ok(cluster)
    }

    /// Joins the started nodes into a cluster; returns their node ids.
    async fn build(&self, ranges: &[(u16, u16)], deadline: Instant) -> io::Result<Vec<String>> {
        let mut ids = Vec::with_capacity(self.nodes.len());
        for node in &self.nodes {
            ids.push(admin::call_str(node.port(), &node.auth(), &["CLUSTER", "MYID"]).await?);
        }
        for (node, (start, end)) in self.nodes.iter().zip(ranges) {
            let (start, end) = (start.to_string(), end.to_string());
            admin::call(
                node.port(),
                &node.auth(),
                &["CLUSTER", "ADDSLOTSRANGE", &start, &end],
            )
            .await?;
        }
        // Every node meets every node before it (the first node, at least): the
        // handshakes then finish in one cluster tick instead of waiting for gossip.
        for (j, node) in self.nodes.iter().enumerate().skip(1) {
            for earlier in &self.nodes[..j] {
                let port = earlier.port().to_string();
                admin::call(
                    node.port(),
                    &node.auth(),
                    &["CLUSTER", "MEET", "127.0.0.1", &port],
                )
                .await?;
            }
        }
        tracing::debug!("cluster: slots assigned, nodes met");
        self.wait("every node to know every other node", deadline, || {
            self.all_nodes_known(&ids)
        })
        .await?;
        for (primary, id) in ids.iter().enumerate().take(self.primaries) {
            for replica in self.replicas_of(primary) {
                self.wait("CLUSTER REPLICATE to succeed", deadline, || async move {
                    admin::call(
                        replica.port(),
                        &replica.auth(),
                        &["CLUSTER", "REPLICATE", id],
                    )
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
                })
                .await?;
            }
        }
        tracing::debug!("cluster: replicas attached");
        self.wait("the cluster to become ready", deadline, || {
            self.check_ready(Some(&self.expected))
        })
        .await?;
        Ok(ids)
    }

    /// Polls `probe` until it succeeds; on timeout the error carries its last message.
    async fn wait<F, Fut>(&self, what: &str, deadline: Instant, mut probe: F) -> io::Result<()>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<(), String>>,
    {
        loop {
            let last = match probe().await {
                Ok(()) => return Ok(()),
                Err(message) => message,
            };
            if Instant::now() >= deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("timed out waiting for {what}: {last}"),
                ));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    async fn all_nodes_known(&self, ids: &[String]) -> Result<(), String> {
        for node in &self.nodes {
            let text = admin::call_str(node.port(), &node.auth(), &["CLUSTER", "NODES"])
                .await
                .map_err(|e| e.to_string())?;
            let known: Vec<&str> = text
                .lines()
                .filter(|line| !line.contains("handshake") && !line.contains("noaddr"))
                .filter_map(|line| line.split_whitespace().next())
                .collect();
            if let Some(missing) = ids.iter().find(|id| !known.contains(&id.as_str())) {
                return Err(format!("node {} does not know {missing} yet", node.port()));
            }
        }
        Ok(())
    }

    /// Checks every running, non-frozen node: `cluster_state:ok`, the same slot map
    /// (equal to `expected` if given), and replication links up on replicas.
    async fn check_ready(&self, expected: Option<&SlotMap>) -> Result<(), String> {
        let mut agreed: Option<SlotMap> = expected.cloned();
        for (_, node) in self.live_nodes() {
            let port = node.port();
            let info = admin::call_str(port, &node.auth(), &["CLUSTER", "INFO"])
                .await
                .map_err(|e| format!("node {port}: {e}"))?;
            if info_field(&info, "cluster_state") != Some("ok") {
                return Err(format!("node {port} is not in cluster_state:ok"));
            }
            let slots = admin::call(port, &node.auth(), &["CLUSTER", "SLOTS"])
                .await
                .map_err(|e| format!("node {port}: {e}"))?;
            let map = parse_cluster_slots(&slots).map_err(|e| format!("node {port}: {e}"))?;
            // CLUSTER SHARDS groups nodes by the shard id they gossip, which
            // a replica's peers learn a moment after its role: until then
            // it shows as a shard of its own, without slots.
            let shards = admin::call(port, &node.auth(), &["CLUSTER", "SHARDS"])
                .await
                .map_err(|e| format!("node {port}: {e}"))?;
            let shards = valkey_client::cluster::parse_shards(&shards, "127.0.0.1")
                .map_err(|e| format!("node {port}: {e}"))?;
            if let Some(stray) = shards
                .iter()
                .find(|s| s.slots.is_empty() && s.primary.is_none())
            {
                let ports: Vec<u16> = stray.replicas.iter().map(|r| r.port).collect();
                return Err(format!(
                    "node {port} lists replicas {ports:?} outside their primary's shard"
                ));
            }
            match &agreed {
                Some(want) if *want != map => {
                    return Err(format!(
                        "node {port} sees slots {} , expected {}",
                        show(&map),
                        show(want)
                    ));
                }
                Some(_) => {}
                None => agreed = Some(map),
            }
            let replication = node
                .info("replication")
                .await
                .map_err(|e| format!("node {port}: {e}"))?;
            if info_field(&replication, "role") == Some("slave")
                && info_field(&replication, "master_link_status") != Some("up")
            {
                return Err(format!("replica {port}: master link is not up"));
            }
        }
        Ok(())
    }

    /// Waits until every running node reports `cluster_state:ok`, all running nodes
    /// agree on the slot map and replicas have their links up. Useful after
    /// stopping, killing or restarting nodes.
    ///
    /// [Frozen](Server::freeze) nodes are not asked, but the others still see them:
    /// while a frozen primary has not been failed over, its replicas report their
    /// link down and (with full coverage required) the survivors report
    /// `cluster_state:fail`, so this waits for the failover, or the thaw, to happen.
    pub async fn wait_until_consistent(&self, timeout: Duration) -> io::Result<()> {
        self.wait(
            "the cluster to be consistent",
            Instant::now() + timeout,
            || self.check_ready(None),
        )
        .await
    }

    /// The current slot map as seen by the first running, non-frozen node
    /// (`CLUSTER SLOTS`).
    pub async fn slot_map(&self) -> io::Result<SlotMap> {
        let (_, node) = self
            .live_nodes()
            .next()
            .ok_or_else(|| io::Error::other("no node is running (and not frozen)"))?;
        parse_cluster_slots(&admin::call(node.port(), &node.auth(), &["CLUSTER", "SLOTS"]).await?)
    }

    /// The slot map built at startup.
    pub fn initial_slot_map(&self) -> &SlotMap {
        &self.expected
    }

    /// The port of the primary that owned `slot` at startup.
    ///
    /// # Panics
    ///
    /// Panics if `slot >= 16384`.
    pub fn slot_owner(&self, slot: u16) -> u16 {
        self.expected
            .iter()
            .find(|r| (r.start..=r.end).contains(&slot))
            .map(|r| r.primary)
            .unwrap_or_else(|| panic!("slot {slot} out of range 0..16384"))
    }

    /// All nodes: primaries first, then replicas.
    pub fn nodes(&self) -> &[Server] {
        &self.nodes
    }

    /// The primaries, in slot order.
    pub fn primaries(&self) -> &[Server] {
        &self.nodes[..self.primaries]
    }

    /// All replicas.
    pub fn replicas(&self) -> &[Server] {
        &self.nodes[self.primaries..]
    }

    /// The replicas of primary `i`.
    ///
    /// # Panics
    ///
    /// Panics if `i` is not less than the number of primaries.
    pub fn replicas_of(&self, i: usize) -> &[Server] {
        assert!(i < self.primaries, "primary {i} out of range");
        let first = self.primaries + i * self.replicas_per_primary;
        &self.nodes[first..first + self.replicas_per_primary]
    }

    /// Node `i` (see [`Cluster`] for the numbering). Panics if out of range.
    pub fn node(&self, i: usize) -> &Server {
        &self.nodes[i]
    }

    /// Node `i`, mutably. Panics if out of range.
    pub fn node_mut(&mut self, i: usize) -> &mut Server {
        &mut self.nodes[i]
    }

    /// Stops node `i` cleanly (see [`Server::stop`]).
    pub async fn stop_node(&mut self, i: usize) -> io::Result<()> {
        self.nodes[i].stop().await
    }

    /// Kills node `i` with SIGKILL.
    pub fn kill_node(&mut self, i: usize) {
        self.nodes[i].kill();
    }

    /// Restarts node `i` on the same port; it keeps its `nodes.conf` and rejoins.
    pub async fn restart_node(&mut self, i: usize) -> io::Result<()> {
        self.nodes[i].restart().await
    }

    /// `(host, port)` of every node, to seed a cluster client.
    pub fn seed_addrs(&self) -> Vec<(String, u16)> {
        self.nodes
            .iter()
            .map(|n| (n.host().to_owned(), n.port()))
            .collect()
    }

    /// `valkey://127.0.0.1:<port>` of every node.
    pub fn seed_urls(&self) -> Vec<String> {
        self.nodes.iter().map(Server::url).collect()
    }
}

fn show(map: &SlotMap) -> String {
    map.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod config_tests {
    use super::*;

    #[test]
    fn cluster_node_timeout_given_as_a_directive_is_the_one_used() {
        let config = ClusterConfig::default().config("cluster-node-timeout", "500");
        assert_eq!(config.node_timeout, Duration::from_millis(500));
        let rendered = format!("{:?}", config.node_config());
        assert!(rendered.contains("\"500\""), "{rendered}");
        assert!(!rendered.contains("\"2000\""), "{rendered}");
    }
}
