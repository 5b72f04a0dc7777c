//! [`ValkeyClusterBuilder`]: every option of the cluster client.

use std::sync::Arc;
use std::time::Duration;

use super::{Settings, ValkeyCluster};
use crate::cluster::read_from::ReadFrom;
use crate::config::{ConnectionConfig, DEFAULT_PORT};
use crate::error::{Error, ErrorKind, Result};
use crate::node::budget::Bucket;
use crate::node::options::{NodeOptions, node_option_setters};

/// Builds a [`ValkeyCluster`]. The defaults are valkey-py's:
/// `retry` per node `Retry(NoBackoff, 0)` (none), `cluster_error_retry_attempts`
/// 3, `reinitialize_steps` 5, reads from primaries, `require_full_coverage`
/// false, dynamic startup nodes; plus a topology refresh at most every
/// 100 ms (jittered) and every 60 s in the background.
///
/// The connection options (`password`, `tls`, timeouts, `protocol`, ...)
/// apply to every node.
#[derive(Clone)]
pub struct ValkeyClusterBuilder {
    pub(super) options: NodeOptions,
    pub(super) seeds: Vec<(String, u16)>,
    pub(super) settings: Settings,
}

impl std::fmt::Debug for ValkeyClusterBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ValkeyClusterBuilder")
            .field("seeds", &self.seeds)
            .field("config", &self.options.config)
            .field("retry", &self.options.retry)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Default for ValkeyClusterBuilder {
    fn default() -> Self {
        ValkeyClusterBuilder::new()
    }
}

impl ValkeyClusterBuilder {
    /// The defaults, with no seed yet.
    pub fn new() -> ValkeyClusterBuilder {
        ValkeyClusterBuilder {
            options: NodeOptions::new(ConnectionConfig::tcp("localhost", DEFAULT_PORT)),
            seeds: Vec::new(),
            settings: Settings::default(),
        }
    }

    /// A node to discover the cluster from (valkey-py's `host`/`port` and
    /// `startup_nodes`). Give a few: any one that answers is enough. They
    /// are never forgotten: when every known node fails, the client asks
    /// them again.
    pub fn seed(mut self, host: impl Into<String>, port: u16) -> Self {
        let seed = (host.into(), port);
        if !self.seeds.contains(&seed) {
            self.seeds.push(seed);
        }
        self
    }

    /// Seeds from URLs (`valkey://[user:pass@]host:port`, `valkeys://` for
    /// TLS). The first URL also gives the connection settings for every
    /// node (credentials, TLS, protocol), as valkey-py's `from_url` does.
    pub fn seed_urls<S: AsRef<str>>(mut self, urls: impl IntoIterator<Item = S>) -> Result<Self> {
        let mut first = true;
        for url in urls {
            let config = ConnectionConfig::from_url(url.as_ref())?;
            let Some((host, port)) = config.addr().host_port().map(|(h, p)| (h.to_string(), p))
            else {
                return Err(Error::new(
                    ErrorKind::Config,
                    "a cluster seed must be a TCP address, not a Unix socket",
                ));
            };
            if first {
                // The builder's own setters apply over the URL's settings.
                self.options.rebase(config);
                first = false;
            }
            self = self.seed(host, port);
        }
        Ok(self)
    }

    /// Retries of the whole command after a Connection, Timeout or
    /// ClusterDown failure, each after a topology refresh (default 3).
    pub fn cluster_error_retry_attempts(mut self, attempts: u32) -> Self {
        self.settings.cluster_error_retry_attempts = attempts;
        self
    }

    /// Every this many `MOVED` replies since the last refresh, a command
    /// waits for a topology refresh before following the redirection
    /// (default 5; 0: never waits). Every `MOVED` requests a refresh in the
    /// background either way.
    pub fn reinitialize_steps(mut self, steps: u32) -> Self {
        self.settings.reinitialize_steps = steps;
        self
    }

    /// valkey-py's switch: `true` reads from the primary and its replicas
    /// in turn ([`ReadFrom::RoundRobin`]), `false` from the primary only.
    pub fn read_from_replicas(mut self, enabled: bool) -> Self {
        self.settings.read_from = if enabled {
            ReadFrom::RoundRobin
        } else {
            ReadFrom::Primary
        };
        self
    }

    /// Where read-only commands go. Replicas serve reads after `READONLY`,
    /// which the client sends on every connection when this is not
    /// [`ReadFrom::Primary`]. A replica may lag behind its primary.
    pub fn read_from(mut self, read_from: ReadFrom) -> Self {
        self.settings.read_from = read_from;
        self
    }

    /// Refuse to build the client unless every slot is served, as
    /// valkey-py does (default false). Either way, a command for a slot no
    /// node serves fails with a SlotNotCovered error after a refresh that
    /// still finds no owner; the others run.
    pub fn require_full_coverage(mut self, required: bool) -> Self {
        self.settings.require_full_coverage = required;
        self
    }

    /// Whether the nodes of each view read become the startup nodes for
    /// the next refresh (default true). The seeds are asked too, either way.
    pub fn dynamic_startup_nodes(mut self, enabled: bool) -> Self {
        self.settings.dynamic_startup_nodes = enabled;
        self
    }

    /// The least time between two topology reads (default 100 ms, plus up
    /// to a quarter of it at random). Triggers that arrive meanwhile share
    /// the next read.
    pub fn topology_refresh_min_interval(mut self, interval: Duration) -> Self {
        self.settings.refresh_min_interval = interval;
        self
    }

    /// A topology read in the background this often (default 60 s;
    /// `None`: only when something triggers one).
    pub fn periodic_topology_refresh(mut self, every: Option<Duration>) -> Self {
        self.settings.periodic_refresh = every;
        self
    }

    node_option_setters!();

    /// Builds the client and reads the topology from the seeds. Without a
    /// seed, or when no seed answers, this is an error.
    pub async fn build(self) -> Result<ValkeyCluster> {
        let client = self.build_lazy()?;
        client.refresh_topology().await?;
        if client.inner.settings.require_full_coverage {
            let uncovered = client.inner.topology.view().map.uncovered();
            if uncovered > 0 {
                return Err(Error::new(
                    ErrorKind::SlotNotCovered,
                    format!("{uncovered} slots have no node and require_full_coverage is set"),
                ));
            }
        }
        Ok(client)
    }

    /// Builds the client without contacting any node: the first command
    /// reads the topology. Must be called within a tokio runtime.
    pub fn build_lazy(self) -> Result<ValkeyCluster> {
        if self.seeds.is_empty() {
            return Err(Error::new(
                ErrorKind::Config,
                "a cluster client needs at least one seed node (ValkeyClusterBuilder::seed)",
            ));
        }
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(Error::new(
                ErrorKind::Config,
                "a cluster client must be built within a tokio runtime",
            ));
        }
        let budget = self.options.budget.map(|b| Arc::new(Bucket::new(b)));
        Ok(ValkeyCluster::new(
            self.options,
            self.seeds,
            self.settings,
            budget,
        ))
    }
}
