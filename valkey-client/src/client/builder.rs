//! [`ValkeyBuilder`]: every option of the standalone client.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::{Inner, Valkey};
use crate::backoff::{Backoff, default_backoff};
use crate::config::{Addr, ConnectionConfig, DEFAULT_PORT, Protocol, TlsConfig};
use crate::connection::MultiplexOptions;
use crate::error::{ErrorKind, Result};
use crate::node::blocking::BlockingPool;
use crate::node::budget::{Bucket, RetryBudget};
use crate::node::events::{Event, EventListener};
use crate::node::keeper::{ConnectionKeeper, ReconnectPolicy};
use crate::node::policy::effective_retry;
use crate::retry::Retry;

/// Dedicated connections for blocking commands, at most, by default.
const DEFAULT_MAX_BLOCKING_CONNECTIONS: usize = 8;

/// Builds a [`Valkey`] client. Options not set keep their defaults:
/// `localhost:6379`, no retries, the connection defaults of
/// [`ConnectionConfig`], reconnection with `default_backoff()` that never
/// gives up, a [`RetryBudget::default()`], no overall deadline.
#[derive(Clone)]
pub struct ValkeyBuilder {
    config: ConnectionConfig,
    host: Option<String>,
    port: Option<u16>,
    retry: Option<Retry>,
    retry_on_error: Vec<ErrorKind>,
    retry_on_timeout: bool,
    retry_non_idempotent: bool,
    request_timeout: Option<Duration>,
    reconnect_backoff: Box<dyn Backoff>,
    max_reconnect_attempts: Option<u32>,
    budget: Option<RetryBudget>,
    listener: Option<EventListener>,
    mux: MultiplexOptions,
    max_blocking_connections: usize,
}

impl std::fmt::Debug for ValkeyBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ValkeyBuilder")
            .field("config", &self.config)
            .field("retry", &self.retry)
            .field("retry_on_error", &self.retry_on_error)
            .field("retry_on_timeout", &self.retry_on_timeout)
            .finish_non_exhaustive()
    }
}

impl Default for ValkeyBuilder {
    fn default() -> Self {
        ValkeyBuilder::new()
    }
}

impl ValkeyBuilder {
    /// The defaults.
    pub fn new() -> ValkeyBuilder {
        ValkeyBuilder {
            config: ConnectionConfig::tcp("localhost", DEFAULT_PORT),
            host: None,
            port: None,
            retry: None,
            retry_on_error: Vec::new(),
            retry_on_timeout: false,
            retry_non_idempotent: false,
            request_timeout: None,
            reconnect_backoff: Box::new(default_backoff()),
            max_reconnect_attempts: None,
            budget: Some(RetryBudget::default()),
            listener: None,
            mux: MultiplexOptions::default(),
            max_blocking_connections: DEFAULT_MAX_BLOCKING_CONNECTIONS,
        }
    }

    /// The server's host name or IP address.
    pub fn host(mut self, host: impl Into<String>) -> Self {
        self.host = Some(host.into());
        self
    }

    /// The server's port.
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// A Unix socket instead of TCP.
    pub fn unix(mut self, path: impl Into<PathBuf>) -> Self {
        self.config = ConnectionConfig::unix(path.into()).clone_settings_from(&self.config);
        self.host = None;
        self.port = None;
        self
    }

    /// Takes address, credentials, database, TLS and protocol from a URL.
    pub fn url(mut self, url: &str) -> Result<Self> {
        self.config = ConnectionConfig::from_url(url)?;
        self.host = None;
        self.port = None;
        Ok(self)
    }

    /// The whole connection configuration at once.
    pub fn connection_config(mut self, config: ConnectionConfig) -> Self {
        self.config = config;
        self.host = None;
        self.port = None;
        self
    }

    /// The ACL user.
    pub fn username(mut self, username: impl Into<String>) -> Self {
        self.config = self.config.username(username);
        self
    }

    /// The password.
    pub fn password(mut self, password: impl Into<String>) -> Self {
        self.config = self.config.password(password);
        self
    }

    /// The database to select.
    pub fn db(mut self, db: i64) -> Self {
        self.config = self.config.db(db);
        self
    }

    /// TLS settings.
    pub fn tls(mut self, tls: TlsConfig) -> Self {
        self.config = self.config.tls(tls);
        self
    }

    /// The RESP version.
    pub fn protocol(mut self, protocol: Protocol) -> Self {
        self.config = self.config.protocol(protocol);
        self
    }

    /// The name given with `CLIENT SETNAME`.
    pub fn client_name(mut self, name: impl Into<String>) -> Self {
        self.config = self.config.client_name(name);
        self
    }

    /// How long opening a connection may take (handshake included).
    pub fn connect_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.config = self.config.connect_timeout(timeout);
        self
    }

    /// How long one attempt waits for its reply; also how long a connection
    /// with requests outstanding may stay silent before it is replaced.
    pub fn response_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.config = self.config.response_timeout(timeout);
        self
    }

    /// The overall deadline of every call: all attempts and backoff sleeps
    /// together (per-call override: [`CallOptions::timeout`](super::CallOptions::timeout)).
    pub fn request_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// The `Retry` (backoff, number of retries, retried kinds).
    pub fn retry(mut self, retry: Retry) -> Self {
        self.retry = Some(retry);
        self
    }

    /// Error kinds to retry, added to the `Retry`'s own; alone, they get
    /// `Retry(NoBackoff, 1)`. Kinds match by family: `Connection` covers
    /// `BusyLoading` and `Authentication`.
    pub fn retry_on_error(mut self, kinds: impl IntoIterator<Item = ErrorKind>) -> Self {
        self.retry_on_error = kinds.into_iter().collect();
        self
    }

    /// Also retry timeouts; alone, it gets `Retry(NoBackoff, 1)`.
    pub fn retry_on_timeout(mut self, enabled: bool) -> Self {
        self.retry_on_timeout = enabled;
        self
    }

    /// Retry commands that may have run and are not safe to repeat (INCR,
    /// LPUSH, EVAL, ...) after a lost reply, or after an error reply of a
    /// retried kind that does not prove they did not run (see
    /// [`Error::proves_not_run`](crate::Error::proves_not_run)). Off by
    /// default: at most once.
    pub fn retry_non_idempotent(mut self, allow: bool) -> Self {
        self.retry_non_idempotent = allow;
        self
    }

    /// The waits between background reconnect attempts.
    pub fn reconnect_backoff(mut self, backoff: impl Backoff + 'static) -> Self {
        self.reconnect_backoff = Box::new(backoff);
        self
    }

    /// Background reconnect attempts before giving up (`None`, the default:
    /// never). Commands still try to connect on their own after that.
    pub fn max_reconnect_attempts(mut self, attempts: Option<u32>) -> Self {
        self.max_reconnect_attempts = attempts;
        self
    }

    /// The retry budget shared by every call of this client (`None`: no limit).
    pub fn retry_budget(mut self, budget: Option<RetryBudget>) -> Self {
        self.budget = budget;
        self
    }

    /// Calls `listener` with every retry, give-up and reconnect [`Event`].
    pub fn on_event(mut self, listener: impl Fn(&Event<'_>) + Send + Sync + 'static) -> Self {
        self.listener = Some(Arc::new(listener));
        self
    }

    /// Requests written but not yet answered on the connection, at most;
    /// further callers wait for room (bounded by their timeouts).
    pub fn max_in_flight(mut self, max: usize) -> Self {
        self.mux.max_in_flight = max.max(1);
        self
    }

    /// Dedicated connections for blocking commands (`BLPOP`, `XREAD ...
    /// BLOCK`, `WAIT`, ...), at most (default 8). A blocking call finds one
    /// free or waits for one, within its deadline; two are kept open while
    /// idle.
    pub fn max_blocking_connections(mut self, max: usize) -> Self {
        self.max_blocking_connections = max.max(1);
        self
    }

    /// Builds the client and opens its connection under the client's retry
    /// policy, as valkey-py does: a server that is restarting, refusing or
    /// still loading is tried again with the `Retry`'s backoff for its
    /// retried kinds, each attempt within the connect timeout and all of
    /// them within the request timeout. Without a retry, the first failure
    /// (an unreachable server, a refused handshake) is returned at once.
    pub async fn build(self) -> Result<Valkey> {
        let client = self.build_lazy();
        client.connect_under_retry().await?;
        Ok(client)
    }

    /// Builds the client without connecting: it returns at once, and the
    /// first request opens the connection (under the retry policy, like any
    /// request). For services that must start while their server is down.
    /// Must be called within a tokio runtime when the client is used.
    pub fn build_lazy(self) -> Valkey {
        let mut config = self.config;
        if self.host.is_some() || self.port.is_some() {
            let (host, port) = match config.addr() {
                Addr::Tcp { host, port } => (host.clone(), *port),
                _ => ("localhost".to_string(), DEFAULT_PORT),
            };
            let addr = Addr::Tcp {
                host: self.host.unwrap_or(host),
                port: self.port.unwrap_or(port),
            };
            config = ConnectionConfig::with_addr(addr).clone_settings_from(&config);
        }
        let retry = effective_retry(
            self.retry.as_ref(),
            &self.retry_on_error,
            self.retry_on_timeout,
        );
        let response_timeout = config.response_timeout_value();
        let mux = MultiplexOptions {
            response_timeout,
            ..self.mux
        };
        let blocking = BlockingPool::new(config.clone(), self.max_blocking_connections);
        let keeper = Arc::new(ConnectionKeeper::new(
            config,
            mux,
            ReconnectPolicy {
                backoff: self.reconnect_backoff,
                max_attempts: self.max_reconnect_attempts,
            },
            self.listener.clone(),
        ));
        Valkey {
            inner: Arc::new(Inner {
                keeper,
                blocking,
                retry,
                retry_non_idempotent: self.retry_non_idempotent,
                response_timeout,
                request_timeout: self.request_timeout,
                budget: self.budget.map(Bucket::new),
                listener: self.listener,
            }),
        }
    }
}
