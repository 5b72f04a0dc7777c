//! [`ValkeyCluster`]: the cluster client. It is a set of standalone node
//! clients (one [`Valkey`] per node: its multiplexed connection, its
//! `retry`, its blocking pool) plus the slot map and the cluster's own
//! loop. Nothing of the standalone client is copied here.

mod builder;
mod discover;
mod fanout;
mod first;
mod pipeline;
mod single;
mod view;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::time::Instant;

pub use builder::ValkeyClusterBuilder;

use super::read_from::ReadFrom;
use super::refresh::RefreshGate;
use super::route::{Route, route};
use crate::client::{CallOptions, Mode, Valkey};
use crate::cmd::Cmd;
use crate::command::{self, ConnectionUse};
use crate::config::{Addr, ConnectionConfig};
use crate::error::{Error, ErrorKind, Result};
use crate::from_value::FromValue;
use crate::node::budget::Bucket;
use crate::node::options::NodeOptions;
use crate::pipeline::Pipeline;
use crate::resp::Value;
use crate::retry::Retry;
use crate::telemetry::{self, CallScope};
pub use first::ClusterFirstAttempt;
use single::Place;
use tracing::{Instrument, Span};
use view::Topology;

/// The cluster options beside the per-node ones.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) cluster_error_retry_attempts: u32,
    pub(crate) reinitialize_steps: u32,
    pub(crate) read_from: ReadFrom,
    pub(crate) require_full_coverage: bool,
    pub(crate) dynamic_startup_nodes: bool,
    pub(crate) refresh_min_interval: Duration,
    pub(crate) periodic_refresh: Option<Duration>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            cluster_error_retry_attempts: 3,
            reinitialize_steps: 5,
            read_from: ReadFrom::Primary,
            require_full_coverage: false,
            dynamic_startup_nodes: true,
            refresh_min_interval: Duration::from_millis(100),
            periodic_refresh: Some(Duration::from_secs(60)),
        }
    }
}

/// The async client of a Valkey cluster. Cheap to clone: clones share the
/// topology, the connections and the retry budget.
///
/// Each command goes to the node that serves its keys' slot; replies of
/// `MOVED`, `ASK`, `TRYAGAIN` and `CLUSTERDOWN` are followed as valkey-py's
/// cluster client does, with the differences `docs/retries.md` lists (at
/// most once, one deadline, refreshes that are single-flight and never go
/// backwards, seeds never forgotten).
///
/// ```no_run
/// # async fn demo() -> valkey_client::Result<()> {
/// use valkey_client::{Commands, ExponentialBackoff, Retry, ValkeyCluster};
///
/// // Run 3 retries per node with exponential backoff, and 2 retries of the
/// // whole command after a cluster error.
/// let rc = ValkeyCluster::builder()
///     .seed("localhost", 7000)
///     .retry(Retry::new(ExponentialBackoff::default(), 3))
///     .cluster_error_retry_attempts(2)
///     .build()
///     .await?;
/// rc.set("foo", "bar").await?;
/// let foo: Option<String> = rc.get("foo").await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ValkeyCluster {
    inner: Arc<Shared>,
}

pub(crate) struct Shared {
    options: NodeOptions,
    settings: Settings,
    retry: Option<Retry>,
    topology: Topology,
    gate: RefreshGate,
    /// Spreads reads over replicas and keyless commands over primaries.
    turn: AtomicUsize,
    /// Why the last topology read failed, if it did.
    last_refresh_error: Mutex<Option<Error>>,
}

/// Where [`ValkeyCluster::request_on`] sends a command, whatever its keys.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Target {
    /// The node at this address (as the cluster reports it).
    Node {
        /// Host name or IP address.
        host: String,
        /// Port.
        port: u16,
    },
    /// The primary that serves this slot.
    Slot(u16),
    /// Every primary; the replies are combined by the command's response
    /// policy, or returned as a map from node address to reply.
    AllPrimaries,
    /// Every node, primaries and replicas, combined the same way.
    AllNodes,
    /// One primary, taking turns.
    RandomPrimary,
}

impl std::fmt::Debug for ValkeyCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let view = self.inner.topology.view();
        f.debug_struct("ValkeyCluster")
            .field("shards", &view.map.shards().len())
            .field("retry", &self.inner.retry)
            .field("settings", &self.inner.settings)
            .finish()
    }
}

impl ValkeyCluster {
    /// A builder with every option.
    pub fn builder() -> ValkeyClusterBuilder {
        ValkeyClusterBuilder::new()
    }

    /// Connects through the seed `host:port` with the defaults.
    pub async fn connect(host: &str, port: u16) -> Result<ValkeyCluster> {
        ValkeyCluster::builder().seed(host, port).build().await
    }

    /// Connects through seed URLs; the first gives the connection settings.
    pub async fn from_urls<S: AsRef<str>>(
        urls: impl IntoIterator<Item = S>,
    ) -> Result<ValkeyCluster> {
        ValkeyCluster::builder().seed_urls(urls)?.build().await
    }

    fn new(
        options: NodeOptions,
        seeds: Vec<(String, u16)>,
        settings: Settings,
        budget: Option<Arc<Bucket>>,
    ) -> ValkeyCluster {
        let readonly = settings.read_from != ReadFrom::Primary;
        let node_options = options.clone();
        let make = move |host: &str, port: u16| {
            let mut node = node_options.clone();
            let addr = Addr::Tcp {
                host: host.to_string(),
                port,
            };
            node.config = ConnectionConfig::with_addr(addr).clone_settings_from(&node.config);
            node.config.readonly = readonly;
            // No background reconnection: a node that is down is the
            // topology's business, and requests reconnect on demand.
            Valkey::from_options(&node, None, budget.clone())
        };
        let inner = Arc::new_cyclic(|weak: &Weak<Shared>| {
            let weak = weak.clone();
            let gate = RefreshGate::new(
                settings.refresh_min_interval,
                Box::new(move || {
                    let weak = weak.clone();
                    Box::pin(async move {
                        if let Some(shared) = weak.upgrade() {
                            let result = discover::refresh(&shared).await;
                            *shared
                                .last_refresh_error
                                .lock()
                                .unwrap_or_else(|p| p.into_inner()) = result.err();
                        }
                    })
                }),
            );
            Shared {
                retry: options.effective_retry(),
                topology: Topology::new(seeds, settings.dynamic_startup_nodes, Box::new(make)),
                options,
                settings,
                gate,
                turn: AtomicUsize::new(0),
                last_refresh_error: Mutex::new(None),
            }
        });
        if let Some(every) = inner.settings.periodic_refresh {
            tokio::spawn(periodic_refresh(Arc::downgrade(&inner), every));
        }
        ValkeyCluster { inner }
    }

    /// The per-node retry in force, after resolving `retry`,
    /// `retry_on_error` and `retry_on_timeout`; `None` when a node's
    /// failures are not retried on that node (the cluster's own retries
    /// still apply).
    pub fn effective_retry(&self) -> Option<&Retry> {
        self.inner.retry.as_ref()
    }

    /// Reads the topology now (or joins the read under way) and waits for
    /// it. Rarely needed: the client refreshes on its own when the cluster
    /// tells it something changed.
    pub async fn refresh_topology(&self) -> Result<()> {
        self.inner.refresh_and_wait(None).await;
        match self.inner.last_refresh_error() {
            Some(err) if self.inner.topology.view().map.shards().is_empty() => Err(err),
            _ => Ok(()),
        }
    }

    /// The address (`host:port`) of the primary that serves `slot` in the
    /// client's current view.
    pub fn slot_owner(&self, slot: u16) -> Option<String> {
        let view = self.inner.topology.view();
        let shard = view.map.shard(slot)?;
        let primary = shard.primary.as_ref()?;
        Some(view::node_key(&primary.host, primary.port))
    }

    /// Runs a command and converts its reply.
    ///
    /// A keyed command goes to the node that serves its slot; keys in
    /// several slots are a CrossSlot error, except for `MGET`, `MSET`,
    /// `DEL`, `UNLINK`, `EXISTS` and `TOUCH`, which are split by slot, sent
    /// in parallel and merged in key order (so they are not atomic across
    /// slots). Keyless commands go where the command table's request
    /// policy says (all primaries, all nodes, or one primary) and their
    /// replies are combined by its response policy (`DBSIZE` sums, `KEYS`
    /// concatenates; `INFO` and the other "special" ones give a map from
    /// node address to reply; `RANDOMKEY` a key of any primary). `SCAN` is
    /// refused: it walks one node. Blocking commands run
    /// on dedicated connections; commands that change their connection's
    /// state are refused, as on [`Valkey`].
    pub async fn request<T: FromValue>(&self, cmd: &Cmd) -> Result<T> {
        T::from_value(self.execute(cmd, &CallOptions::default()).await?)
    }

    /// Runs a command with per-call options and converts its reply.
    pub async fn request_with<T: FromValue>(&self, cmd: &Cmd, options: &CallOptions) -> Result<T> {
        T::from_value(self.execute(cmd, options).await?)
    }

    /// Runs a command on the node(s) `target` names, whatever its keys say.
    /// The node's `retry` applies; the cluster's loop does not (a command
    /// aimed at a node is not sent elsewhere), as in valkey-py.
    pub async fn request_on<T: FromValue>(&self, target: &Target, cmd: &Cmd) -> Result<T> {
        if let ConnectionUse::State(state) = command::connection_use(cmd) {
            return Err(state.refusal());
        }
        let options = CallOptions::default();
        let call = CallScope::start(|| cmd.name(), || cmd.name_bytes());
        let result = self
            .inner
            .on_target(target, cmd, &options)
            .instrument(call.span().clone())
            .await;
        call.finish(&result);
        T::from_value(result?)
    }

    /// Runs the commands of a pipeline across the cluster: split by node,
    /// written to every node before any reply is awaited, results in the
    /// pipeline's order. A command answered `MOVED`, `ASK`, `TRYAGAIN` or
    /// `CLUSTERDOWN`, or left without a reply by a connection failure, is
    /// run again on its own through the cluster's loop, under the usual
    /// rules (a command that may have run is repeated only when safe or
    /// opted in). `MULTI ... EXEC` is allowed when all its keys are in one
    /// slot.
    pub async fn pipeline(&self, pipe: &mut Pipeline) -> Result<Vec<Result<Value>>> {
        self.pipeline_with(pipe, &CallOptions::default()).await
    }

    /// [`ValkeyCluster::pipeline`] with per-call options.
    pub async fn pipeline_with(
        &self,
        pipe: &mut Pipeline,
        options: &CallOptions,
    ) -> Result<Vec<Result<Value>>> {
        let operation = pipe.operation_name();
        let call = CallScope::start(|| operation, || operation.as_bytes());
        telemetry::record_batch_size(call.span(), pipe.len());
        let result = self
            .inner
            .pipeline(pipe, options)
            .instrument(call.span().clone())
            .await;
        call.finish(&result);
        result
    }

    /// Runs a pipeline like [`ValkeyCluster::pipeline`] and converts its
    /// replies as one array into `T` (a tuple, a `Vec`, ...); see
    /// [`Valkey::pipeline_into`]. The first failed command's error is the
    /// returned error, unless `T` asks for `Result` elements.
    ///
    /// ```no_run
    /// # async fn demo(cluster: valkey_client::ValkeyCluster) -> valkey_client::Result<()> {
    /// use valkey_client::Pipeline;
    /// let mut pipe = Pipeline::new();
    /// pipe.cmd("SET").arg("{u}a").arg(1);
    /// pipe.cmd("GET").arg("{u}a");
    /// let ((), a): ((), i64) = cluster.pipeline_into(&mut pipe).await?;
    /// assert_eq!(a, 1);
    /// # Ok(()) }
    /// ```
    pub async fn pipeline_into<T: FromValue>(&self, pipe: &mut Pipeline) -> Result<T> {
        T::from_results(self.pipeline(pipe).await?)
    }

    /// [`ValkeyCluster::pipeline_into`] with per-call options.
    pub async fn pipeline_into_with<T: FromValue>(
        &self,
        pipe: &mut Pipeline,
        options: &CallOptions,
    ) -> Result<T> {
        T::from_results(self.pipeline_with(pipe, options).await?)
    }

    /// The primaries of the current view (read first if none is known), as
    /// targets of [`ValkeyCluster::request_on`].
    pub(crate) async fn primary_targets(&self) -> Result<Vec<Target>> {
        let nodes = self.inner.nodes(false, None).await?;
        Ok(nodes
            .iter()
            .filter_map(|node| node.host_port())
            .map(|(host, port)| Target::Node {
                host: host.to_string(),
                port,
            })
            .collect())
    }

    /// The client of the primary that serves `slot`.
    pub(crate) async fn slot_primary(
        &self,
        slot: u16,
        deadline: Option<Instant>,
    ) -> Result<Valkey> {
        let place = Place::Slot {
            slot,
            readonly: false,
        };
        self.inner.locate(place, deadline).await
    }

    /// The overall deadline of a call with `options`, from now.
    pub(crate) fn call_deadline(&self, options: &CallOptions) -> Option<Instant> {
        self.inner.deadline(options)
    }

    /// Runs one command for a caller, as one call: its span (the server
    /// recorded once routed), its metrics.
    pub(crate) async fn execute(&self, cmd: &Cmd, options: &CallOptions) -> Result<Value> {
        let call = CallScope::start(|| cmd.name(), || cmd.name_bytes());
        let result = self.execute_in(cmd, options, call.span()).await;
        call.finish(&result);
        result
    }

    async fn execute_in(&self, cmd: &Cmd, options: &CallOptions, span: &Span) -> Result<Value> {
        let mode = match command::connection_use(cmd) {
            ConnectionUse::Shared => Mode::Shared,
            ConnectionUse::Blocking(timeout) => Mode::Blocking(timeout),
            ConnectionUse::State(state) => return Err(state.refusal()),
        };
        let shared = &*self.inner;
        let deadline = shared.deadline(options);
        let opted_in = shared.opted_in(options);
        match route(cmd)? {
            Route::Slot { slot, readonly } => {
                let place = Place::Slot { slot, readonly };
                shared.run(cmd, mode, place, deadline, opted_in, span).await
            }
            // Several nodes: their events go in the span, no one server.
            Route::SplitBySlot { group } => {
                let split = shared.split_by_slot(cmd, group, deadline, opted_in);
                split.instrument(span.clone()).await
            }
            Route::AllPrimaries(policy) => {
                let fan_out = shared.fan_out(cmd, false, policy, deadline, opted_in);
                fan_out.instrument(span.clone()).await
            }
            Route::AllNodes(policy) => {
                let fan_out = shared.fan_out(cmd, true, policy, deadline, opted_in);
                fan_out.instrument(span.clone()).await
            }
            Route::Special if cmd.name().eq_ignore_ascii_case("scan") => Err(Error::new(
                ErrorKind::Cluster,
                "SCAN walks one node's keys: in a cluster, send it to each primary with \
                 ValkeyCluster::request_on(&Target::Node { .. }, ..)",
            )),
            Route::AnyNode { .. } | Route::Special => {
                shared
                    .run(cmd, mode, Place::AnyPrimary, deadline, opted_in, span)
                    .await
            }
        }
    }
}

// --- pub/sub: the subscriber and what it needs of the cluster
// (`crate::pubsub::sharded`) ---
impl ValkeyCluster {
    /// A [`Subscriber`](crate::pubsub::Subscriber) for this cluster, with
    /// the default [`SubscriberOptions`](crate::pubsub::SubscriberOptions):
    /// channels and patterns on one node (any: a message published on one
    /// node reaches every node), shard channels (`ssubscribe`) on the
    /// primary that owns their slot, one dedicated connection per such
    /// primary. Subscriptions follow slot migrations and failovers; see
    /// [`crate::pubsub`]. It connects to one primary before returning.
    pub async fn subscriber(&self) -> Result<crate::pubsub::Subscriber> {
        self.subscriber_with(crate::pubsub::SubscriberOptions::default())
            .await
    }

    /// [`ValkeyCluster::subscriber`] with other options.
    pub async fn subscriber_with(
        &self,
        options: crate::pubsub::SubscriberOptions,
    ) -> Result<crate::pubsub::Subscriber> {
        crate::pubsub::sharded::subscriber(self, &options).await
    }

    /// The settings of this client for a connection to `host:port` (no
    /// `READONLY`: a subscriber talks to primaries).
    pub(crate) fn node_config(&self, host: &str, port: u16) -> ConnectionConfig {
        let addr = Addr::Tcp {
            host: host.to_string(),
            port,
        };
        let mut config =
            ConnectionConfig::with_addr(addr).clone_settings_from(&self.inner.options.config);
        config.readonly = false;
        config
    }

    /// The primary that serves `slot` in the current view.
    pub(crate) fn slot_primary_addr(&self, slot: u16) -> Option<(String, u16)> {
        let view = self.inner.topology.view();
        let primary = view.map.shard(slot)?.primary.as_ref()?;
        Some((primary.host.clone(), primary.port))
    }

    /// Every primary of the current view.
    pub(crate) fn primary_addrs(&self) -> Vec<(String, u16)> {
        let view = self.inner.topology.view();
        view.map
            .shards()
            .iter()
            .filter_map(|s| s.primary.as_ref())
            .map(|p| (p.host.clone(), p.port))
            .collect()
    }

    /// The settings for a primary other than `not` (`host:port`), taken by
    /// `turn`; `None` when there is no other.
    pub(crate) fn other_primary_config(&self, not: &str, turn: usize) -> Option<ConnectionConfig> {
        let others: Vec<(String, u16)> = self
            .primary_addrs()
            .into_iter()
            .filter(|(h, p)| view::node_key(h, *p) != not)
            .collect();
        let (host, port) = others.get(turn % others.len().max(1))?;
        Some(self.node_config(host, *port))
    }

    /// A `MOVED` for `slot` to `host:port` seen by a subscriber: the view
    /// is repointed and a topology read asked for, as for a command's.
    pub(crate) fn note_moved(&self, slot: u16, host: &str, port: u16) {
        self.inner.topology.repoint(slot, host, port);
        self.inner.gate.trigger();
    }

    /// Asks for a topology read in the background.
    pub(crate) fn trigger_topology_refresh(&self) {
        self.inner.gate.trigger();
    }

    /// The listener given to the builder.
    pub(crate) fn event_listener(&self) -> Option<crate::node::events::EventListener> {
        self.inner.options.listener.clone()
    }

    /// The waits between a subscriber's reconnect attempts: the backoff of
    /// the per-node `Retry`, or the default one.
    pub(crate) fn reconnect_backoff(&self) -> Box<dyn crate::backoff::Backoff> {
        match &self.inner.retry {
            Some(retry) => retry.backoff(),
            None => Box::new(crate::backoff::default_backoff()),
        }
    }

    /// The response timeout of every node's connection.
    pub(crate) fn response_timeout(&self) -> Option<Duration> {
        self.inner.options.config.response_timeout_value()
    }
}
// --- end pub/sub ---

impl Shared {
    fn deadline(&self, options: &CallOptions) -> Option<Instant> {
        options
            .timeout
            .or(self.options.request_timeout)
            .and_then(|limit| Instant::now().checked_add(limit))
    }

    fn opted_in(&self, options: &CallOptions) -> bool {
        options
            .retry_non_idempotent
            .unwrap_or(self.options.retry_non_idempotent)
    }

    fn next_turn(&self) -> usize {
        self.turn.fetch_add(1, Ordering::Relaxed)
    }

    fn last_refresh_error(&self) -> Option<Error> {
        self.last_refresh_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// Reads the topology every `every` while the client lives.
async fn periodic_refresh(weak: Weak<Shared>, every: Duration) {
    let mut ticks = tokio::time::interval_at(Instant::now() + every, every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(shared) = weak.upgrade() else {
            return;
        };
        shared.gate.trigger();
    }
}

#[cfg(test)]
mod tests;
