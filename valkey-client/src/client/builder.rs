//! [`ValkeyBuilder`]: every option of the standalone client.

#[cfg(unix)]
use std::path::PathBuf;
use std::sync::Arc;

use super::Valkey;
use crate::backoff::{Backoff, default_backoff};
use crate::config::{Addr, ConnectionConfig, DEFAULT_PORT};
use crate::error::Result;
use crate::node::budget::Bucket;
use crate::node::keeper::ReconnectPolicy;
use crate::node::options::{NodeOptions, node_option_setters};

/// Builds a [`Valkey`] client. Options not set keep their defaults:
/// `localhost:6379`, no retries, the connection defaults of
/// [`ConnectionConfig`], reconnection with `default_backoff()` that never
/// gives up, a [`RetryBudget::default()`](crate::RetryBudget::default), no
/// overall deadline.
///
/// What is retried, from `retry`, `retry_on_error` and `retry_on_timeout`:
///
/// | given | effective retry | kinds retried |
/// |---|---|---|
/// | nothing | none | none |
/// | `retry_on_timeout(true)` | `Retry(NoBackoff, 1)` | Timeout |
/// | `retry_on_error([X..])` | `Retry(NoBackoff, 1)` | X.. |
/// | `retry(R)` only | R | R's supported errors |
/// | `retry(R)` + `retry_on_error([X..])` | R | R's supported errors plus X.. |
/// | `retry(R)` + `retry_on_timeout(true)` | R | R's supported errors plus Timeout |
///
/// R's supported errors are Connection and Timeout for [`Retry::new`]
/// (see [`Retry::with_supported_errors`] to change them); kinds match by
/// family, so Connection covers BusyLoading (`LOADING`) and Authentication.
///
/// [`Retry::new`]: crate::Retry::new
/// [`Retry::with_supported_errors`]: crate::Retry::with_supported_errors
#[derive(Clone)]
pub struct ValkeyBuilder {
    options: NodeOptions,
    host: Option<String>,
    port: Option<u16>,
    reconnect_backoff: Box<dyn Backoff>,
    max_reconnect_attempts: Option<u32>,
}

impl std::fmt::Debug for ValkeyBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ValkeyBuilder")
            .field("config", &self.options.config)
            .field("retry", &self.options.retry)
            .field("retry_on_error", &self.options.retry_on_error)
            .field("retry_on_timeout", &self.options.retry_on_timeout)
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
            options: NodeOptions::new(ConnectionConfig::tcp("localhost", DEFAULT_PORT)),
            host: None,
            port: None,
            reconnect_backoff: Box::new(default_backoff()),
            max_reconnect_attempts: None,
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

    /// A Unix socket instead of TCP (Unix platforms only).
    #[cfg(unix)]
    pub fn unix(mut self, path: impl Into<PathBuf>) -> Self {
        self.options.config =
            ConnectionConfig::unix(path.into()).clone_settings_from(&self.options.config);
        self.host = None;
        self.port = None;
        self
    }

    /// Takes address, credentials, database, TLS and protocol from a URL.
    /// Settings given with this builder's own setters (`username`,
    /// `password`, `db`, `tls`, `protocol`, `client_name`, the timeouts)
    /// are kept whatever the order: they apply over the URL's.
    pub fn url(mut self, url: &str) -> Result<Self> {
        self.options.rebase(ConnectionConfig::from_url(url)?);
        self.host = None;
        self.port = None;
        Ok(self)
    }

    /// The whole connection configuration at once; settings given with
    /// this builder's setters apply over it, as with [`ValkeyBuilder::url`].
    pub fn connection_config(mut self, config: ConnectionConfig) -> Self {
        self.options.rebase(config);
        self.host = None;
        self.port = None;
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

    node_option_setters!();

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
        let mut options = self.options;
        if self.host.is_some() || self.port.is_some() {
            let (host, port) = match options.config.addr().host_port() {
                Some((host, port)) => (host.to_string(), port),
                None => ("localhost".to_string(), DEFAULT_PORT),
            };
            let addr = Addr::Tcp {
                host: self.host.unwrap_or(host),
                port: self.port.unwrap_or(port),
            };
            options.config = ConnectionConfig::with_addr(addr).clone_settings_from(&options.config);
        }
        let budget = options.budget.map(|b| Arc::new(Bucket::new(b)));
        let reconnect = ReconnectPolicy {
            backoff: self.reconnect_backoff,
            max_attempts: self.max_reconnect_attempts,
        };
        Valkey::from_options(&options, Some(reconnect), budget)
    }
}
