//! Connection configuration: plain immutable data, built with setters or
//! parsed from a URL.
//!
//! ```
//! use std::time::Duration;
//! use valkey_client::{ConnectionConfig, Protocol};
//!
//! let by_hand = ConnectionConfig::tcp("127.0.0.1", 6379)
//!     .username("app")
//!     .password("s3cret")
//!     .db(2)
//!     .protocol(Protocol::Resp2)
//!     .response_timeout(Some(Duration::from_millis(500)));
//! let from_url: ConnectionConfig = "valkey://app:s3cret@127.0.0.1:6379/2?protocol=2".parse()?;
//! assert_eq!(by_hand.db_index(), from_url.db_index());
//! // The password never shows in Debug output.
//! assert!(!format!("{from_url:?}").contains("s3cret"));
//! # Ok::<(), valkey_client::Error>(())
//! ```

mod secret;
mod tls;
mod tls_provider;
mod url;

#[cfg(unix)]
use std::path::PathBuf;
use std::time::Duration;

use crate::resp::Limits;

pub use secret::Secret;
pub use tls::TlsConfig;

/// Where the server listens.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Addr {
    /// A host name or IP address and a port.
    Tcp {
        /// Host name or IP address.
        host: String,
        /// TCP port.
        port: u16,
    },
    /// A Unix domain socket (Unix platforms only).
    #[cfg(unix)]
    Unix(PathBuf),
}

impl Addr {
    /// The host and port of a TCP address; `None` for a Unix socket.
    /// (Callers use this instead of matching, so that no match depends on
    /// whether the platform has Unix sockets.)
    pub(crate) fn host_port(&self) -> Option<(&str, u16)> {
        match self {
            Addr::Tcp { host, port } => Some((host, *port)),
            #[cfg(unix)]
            Addr::Unix(_) => None,
        }
    }
}

impl std::fmt::Display for Addr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Addr::Tcp { host, port } if host.contains(':') => write!(f, "[{host}]:{port}"),
            Addr::Tcp { host, port } => write!(f, "{host}:{port}"),
            #[cfg(unix)]
            Addr::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

/// The RESP version to speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Protocol {
    /// RESP2: every server speaks it.
    Resp2,
    /// RESP3 (the default): typed replies and out-of-band pushes. Falls back
    /// to RESP2 when the server refuses `HELLO`.
    #[default]
    Resp3,
}

/// The default port of Valkey.
pub const DEFAULT_PORT: u16 = 6379;

/// How to reach and greet one server.
#[derive(Debug, Clone)]
pub struct ConnectionConfig {
    pub(crate) addr: Addr,
    pub(crate) tls: Option<TlsConfig>,
    pub(crate) username: Option<String>,
    pub(crate) password: Option<Secret>,
    pub(crate) db: i64,
    pub(crate) client_name: Option<String>,
    pub(crate) protocol: Protocol,
    pub(crate) connect_timeout: Option<Duration>,
    pub(crate) response_timeout: Option<Duration>,
    pub(crate) tcp_keepalive: Option<Duration>,
    pub(crate) set_lib_info: bool,
    pub(crate) limits: Limits,
    /// Send `READONLY` after the greeting: a cluster replica that serves
    /// reads.
    pub(crate) readonly: bool,
}

impl ConnectionConfig {
    /// A plain TCP server at `host:port`, with the defaults: RESP3, database 0,
    /// 5 s connect timeout, no response timeout, TCP keepalive every 60 s.
    pub fn tcp(host: impl Into<String>, port: u16) -> ConnectionConfig {
        Self::with_addr(Addr::Tcp {
            host: host.into(),
            port,
        })
    }

    /// A server on a Unix domain socket (Unix platforms only).
    #[cfg(unix)]
    pub fn unix(path: impl Into<PathBuf>) -> ConnectionConfig {
        Self::with_addr(Addr::Unix(path.into()))
    }

    /// A server at `addr`, with the defaults of [`ConnectionConfig::tcp`].
    pub fn with_addr(addr: Addr) -> ConnectionConfig {
        ConnectionConfig {
            addr,
            tls: None,
            username: None,
            password: None,
            db: 0,
            client_name: None,
            protocol: Protocol::Resp3,
            connect_timeout: Some(Duration::from_secs(5)),
            response_timeout: None,
            tcp_keepalive: Some(Duration::from_secs(60)),
            set_lib_info: true,
            limits: Limits::default(),
            readonly: false,
        }
    }

    /// Parses `valkey://[user:pass@]host[:port][/db]`, `valkeys://` (TLS),
    /// `redis://`, `rediss://` or `unix:///path?db=N`. Query parameters:
    /// `protocol` (`2` or `3`), `client_name`, and for Unix sockets `db`,
    /// `user` and `password`. Anything else is an error naming the problem;
    /// so is a `unix://` URL on a platform without Unix sockets.
    pub fn from_url(url: &str) -> crate::Result<ConnectionConfig> {
        url::parse(url)
    }

    /// This address with every other setting taken from `other`.
    pub(crate) fn clone_settings_from(self, other: &ConnectionConfig) -> ConnectionConfig {
        ConnectionConfig {
            addr: self.addr,
            ..other.clone()
        }
    }

    /// Uses TLS with this configuration (TCP only).
    pub fn tls(mut self, tls: TlsConfig) -> Self {
        self.tls = Some(tls);
        self
    }

    /// The ACL user to authenticate as (`default` when only a password is set).
    pub fn username(mut self, username: impl Into<String>) -> Self {
        self.username = Some(username.into());
        self
    }

    /// The password to authenticate with.
    pub fn password(mut self, password: impl Into<String>) -> Self {
        self.password = Some(Secret::new(password.into()));
        self
    }

    /// The database to `SELECT` after connecting.
    pub fn db(mut self, db: i64) -> Self {
        self.db = db;
        self
    }

    /// The name given with `CLIENT SETNAME` (shown by `CLIENT LIST`).
    pub fn client_name(mut self, name: impl Into<String>) -> Self {
        self.client_name = Some(name.into());
        self
    }

    /// The RESP version to speak.
    pub fn protocol(mut self, protocol: Protocol) -> Self {
        self.protocol = protocol;
        self
    }

    /// How long opening the connection may take, TLS and handshake included
    /// (`None`: no limit).
    pub fn connect_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long to wait for each reply (`None`: no limit).
    pub fn response_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.response_timeout = timeout;
        self
    }

    /// The TCP keepalive idle time (`None`: no keepalive).
    pub fn tcp_keepalive(mut self, idle: Option<Duration>) -> Self {
        self.tcp_keepalive = idle;
        self
    }

    /// Whether to send `CLIENT SETINFO LIB-NAME/LIB-VER` (default: yes; its
    /// error is ignored on servers that lack it).
    pub fn set_lib_info(mut self, enabled: bool) -> Self {
        self.set_lib_info = enabled;
        self
    }

    /// The parser limits for replies (bulk size, nesting depth, element count).
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Where the server listens.
    pub fn addr(&self) -> &Addr {
        &self.addr
    }

    /// The database selected after connecting.
    pub fn db_index(&self) -> i64 {
        self.db
    }

    /// The RESP version asked for.
    pub fn protocol_version(&self) -> Protocol {
        self.protocol
    }

    /// The TLS configuration, if TLS is on.
    pub fn tls_config(&self) -> Option<&TlsConfig> {
        self.tls.as_ref()
    }

    /// The ACL user, if one is set.
    pub fn user(&self) -> Option<&str> {
        self.username.as_deref()
    }

    /// Whether a password is set (the password itself is never exposed).
    pub fn has_password(&self) -> bool {
        self.password.is_some()
    }

    /// The configured connect timeout.
    pub fn connect_timeout_value(&self) -> Option<Duration> {
        self.connect_timeout
    }

    /// The configured response timeout.
    pub fn response_timeout_value(&self) -> Option<Duration> {
        self.response_timeout
    }
}

impl std::str::FromStr for ConnectionConfig {
    type Err = crate::Error;

    fn from_str(s: &str) -> crate::Result<Self> {
        url::parse(s)
    }
}
