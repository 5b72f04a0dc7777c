//! The options of one node, shared by both builders: [`ValkeyBuilder`]
//! holds one [`NodeOptions`], and `ValkeyClusterBuilder` holds one that it
//! applies to every node of the cluster. The setters are written once, in
//! [`node_option_setters`], and expanded into both builders.
//!
//! [`ValkeyBuilder`]: crate::ValkeyBuilder

use std::sync::Arc;
use std::time::Duration;

use crate::config::ConnectionConfig;
use crate::connection::MultiplexOptions;
use crate::error::ErrorKind;
use crate::node::budget::RetryBudget;
use crate::node::events::EventListener;
use crate::node::policy::effective_retry;
use crate::retry::Retry;

/// Dedicated connections for blocking commands, at most, by default.
pub(crate) const DEFAULT_MAX_BLOCKING_CONNECTIONS: usize = 8;

/// Requests that may wait for a node's connection to open, by default.
pub(crate) const DEFAULT_MAX_WAITING_FOR_CONNECTION: usize = 4096;

/// Everything that shapes how one node is talked to: the connection
/// settings (its address aside, for a cluster), the retry policy and its
/// limits.
#[derive(Clone)]
pub(crate) struct NodeOptions {
    /// Connection settings. A cluster client uses everything but the
    /// address.
    pub(crate) config: ConnectionConfig,
    pub(crate) retry: Option<Retry>,
    pub(crate) retry_on_error: Vec<ErrorKind>,
    pub(crate) retry_on_timeout: bool,
    pub(crate) retry_non_idempotent: bool,
    pub(crate) request_timeout: Option<Duration>,
    pub(crate) budget: Option<RetryBudget>,
    pub(crate) listener: Option<EventListener>,
    pub(crate) mux: MultiplexOptions,
    pub(crate) max_blocking_connections: usize,
    pub(crate) max_waiting_for_connection: usize,
    /// The connection settings given with the builder's setters, kept to be
    /// applied again over a URL or a whole config given later: settings
    /// given in any order are all kept. Closures, so `Debug` of the options
    /// can never show a password.
    explicit: Vec<ConfigSetting>,
}

/// One connection setting given with a setter.
type ConfigSetting = Arc<dyn Fn(ConnectionConfig) -> ConnectionConfig + Send + Sync>;

impl NodeOptions {
    pub(crate) fn new(config: ConnectionConfig) -> NodeOptions {
        NodeOptions {
            config,
            retry: None,
            retry_on_error: Vec::new(),
            retry_on_timeout: false,
            retry_non_idempotent: false,
            request_timeout: None,
            budget: Some(RetryBudget::default()),
            explicit: Vec::new(),
            listener: None,
            mux: MultiplexOptions::default(),
            max_blocking_connections: DEFAULT_MAX_BLOCKING_CONNECTIONS,
            max_waiting_for_connection: DEFAULT_MAX_WAITING_FOR_CONNECTION,
        }
    }

    /// Applies a connection setting now, and again over any URL or config
    /// given later (`rebase`).
    pub(crate) fn set_config(
        &mut self,
        setting: impl Fn(ConnectionConfig) -> ConnectionConfig + Send + Sync + 'static,
    ) {
        self.config = setting(self.config.clone());
        self.explicit.push(Arc::new(setting));
    }

    /// Takes `config` (from a URL, or given whole) as the base, with every
    /// setting given with a setter applied over it.
    pub(crate) fn rebase(&mut self, config: ConnectionConfig) {
        self.config = self.explicit.iter().fold(config, |c, setting| setting(c));
    }

    /// The retry in force after resolving `retry`, `retry_on_error` and
    /// `retry_on_timeout`.
    pub(crate) fn effective_retry(&self) -> Option<Retry> {
        effective_retry(
            self.retry.as_ref(),
            &self.retry_on_error,
            self.retry_on_timeout,
        )
    }

    /// The multiplexing options with the response timeout of the config.
    pub(crate) fn mux_options(&self) -> MultiplexOptions {
        MultiplexOptions {
            response_timeout: self.config.response_timeout_value(),
            ..self.mux.clone()
        }
    }
}

/// The setters of the options in [`NodeOptions`], for a builder with a
/// field `options: NodeOptions`. Written once so that both builders offer
/// the same options with the same documentation.
macro_rules! node_option_setters {
    () => {
        /// The ACL user.
        pub fn username(mut self, username: impl Into<String>) -> Self {
            let username = username.into();
            self.options
                .set_config(move |c| c.username(username.clone()));
            self
        }

        /// The password.
        pub fn password(mut self, password: impl Into<String>) -> Self {
            let password = password.into();
            self.options
                .set_config(move |c| c.password(password.clone()));
            self
        }

        /// The database to select.
        pub fn db(mut self, db: i64) -> Self {
            self.options.set_config(move |c| c.db(db));
            self
        }

        /// TLS settings.
        pub fn tls(mut self, tls: $crate::config::TlsConfig) -> Self {
            self.options.set_config(move |c| c.tls(tls.clone()));
            self
        }

        /// The RESP version.
        pub fn protocol(mut self, protocol: $crate::config::Protocol) -> Self {
            self.options.set_config(move |c| c.protocol(protocol));
            self
        }

        /// The name given with `CLIENT SETNAME`.
        pub fn client_name(mut self, name: impl Into<String>) -> Self {
            let name = name.into();
            self.options
                .set_config(move |c| c.client_name(name.clone()));
            self
        }

        /// How long opening a connection may take (handshake included).
        pub fn connect_timeout(mut self, timeout: Option<std::time::Duration>) -> Self {
            self.options.set_config(move |c| c.connect_timeout(timeout));
            self
        }

        /// How long one attempt waits for its reply; also how long a
        /// connection with requests outstanding may stay silent before it is
        /// replaced.
        pub fn response_timeout(mut self, timeout: Option<std::time::Duration>) -> Self {
            self.options
                .set_config(move |c| c.response_timeout(timeout));
            self
        }

        /// The overall deadline of every call: all attempts and backoff
        /// sleeps together (per-call override:
        /// [`CallOptions::timeout`]($crate::CallOptions::timeout)).
        pub fn request_timeout(mut self, timeout: Option<std::time::Duration>) -> Self {
            self.options.request_timeout = timeout;
            self
        }

        /// The `Retry` (backoff, number of retries, retried kinds).
        pub fn retry(mut self, retry: $crate::Retry) -> Self {
            self.options.retry = Some(retry);
            self
        }

        /// Error kinds to retry, added to the `Retry`'s own; alone, they get
        /// `Retry(NoBackoff, 1)`. Kinds match by family: `Connection` covers
        /// `BusyLoading` and `Authentication`.
        pub fn retry_on_error(
            mut self,
            kinds: impl IntoIterator<Item = $crate::ErrorKind>,
        ) -> Self {
            self.options.retry_on_error = kinds.into_iter().collect();
            self
        }

        /// Also retry timeouts; alone, it gets `Retry(NoBackoff, 1)`.
        pub fn retry_on_timeout(mut self, enabled: bool) -> Self {
            self.options.retry_on_timeout = enabled;
            self
        }

        /// Retry commands that may have run and are not safe to repeat (INCR,
        /// LPUSH, EVAL, ...) after a lost reply, or after an error reply of a
        /// retried kind that does not prove they did not run (see
        /// [`Error::proves_not_run`]($crate::Error::proves_not_run)). Off by
        /// default: at most once.
        pub fn retry_non_idempotent(mut self, allow: bool) -> Self {
            self.options.retry_non_idempotent = allow;
            self
        }

        /// The retry budget shared by every call of this client (`None`: no
        /// limit).
        pub fn retry_budget(mut self, budget: Option<$crate::RetryBudget>) -> Self {
            self.options.budget = budget;
            self
        }

        /// Calls `listener` with every retry, give-up, reconnect and (for a
        /// cluster) topology [`Event`]($crate::Event).
        pub fn on_event(
            mut self,
            listener: impl Fn(&$crate::Event<'_>) + Send + Sync + 'static,
        ) -> Self {
            self.options.listener = Some(std::sync::Arc::new(listener));
            self
        }

        /// Requests written but not yet answered on one connection, at most;
        /// further callers wait for room (bounded by their timeouts).
        pub fn max_in_flight(mut self, max: usize) -> Self {
            self.options.mux.max_in_flight = max.max(1);
            self
        }

        /// Dedicated connections for blocking commands (`BLPOP`, `XREAD ...
        /// BLOCK`, `WAIT`, ...), at most, per server (default 8). A blocking
        /// call finds one free or waits for one, within its deadline; two
        /// are kept open while idle.
        pub fn max_blocking_connections(mut self, max: usize) -> Self {
            self.options.max_blocking_connections = max.max(1);
            self
        }

        /// Requests that may wait at once for a server's connection to open
        /// (default 4096). While a server is unreachable, requests past
        /// this bound fail at once with a `Connection` error that says so
        /// (nothing was sent), instead of piling up.
        pub fn max_waiting_for_connection(mut self, max: usize) -> Self {
            self.options.max_waiting_for_connection = max.max(1);
            self
        }
    };
}

pub(crate) use node_option_setters;
