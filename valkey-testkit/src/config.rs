//! [`ServerConfig`]: how to start one `valkey-server`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::admin::Auth;

/// How to start a [`Server`](crate::Server). Build it with the chained setters:
///
/// ```
/// use valkey_testkit::ServerConfig;
/// let config = ServerConfig::new()
///     .config("maxmemory", "10mb")
///     .unix_socket(true)
///     .password("secret");
/// ```
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub(crate) port: Option<u16>,
    pub(crate) overrides: Vec<(String, String)>,
    pub(crate) unix_socket: bool,
    pub(crate) password: Option<String>,
    pub(crate) acl: Vec<String>,
    pub(crate) admin: Option<(String, String)>,
    pub(crate) startup_timeout: Duration,
    pub(crate) binary: Option<PathBuf>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            port: None,
            overrides: Vec::new(),
            unix_socket: false,
            password: None,
            acl: Vec::new(),
            admin: None,
            startup_timeout: Duration::from_secs(10),
            binary: None,
        }
    }
}

impl ServerConfig {
    /// The default configuration: a free port chosen by [`free_port`](crate::free_port),
    /// no unix socket, no password.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a configuration directive, written to the config file as `key value` after
    /// the testkit's own directives (so it overrides them). `value` is written verbatim:
    /// quote it yourself if it needs quoting.
    pub fn config(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.overrides.push((key.into(), value.into()));
        self
    }

    /// Uses this port instead of a free one. A fixed port is not retried if it is busy.
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// Also listens on a unix socket, `valkey.sock` in the server's directory.
    pub fn unix_socket(mut self, enabled: bool) -> Self {
        self.unix_socket = enabled;
        self
    }

    /// Sets `requirepass`, the default user's password. The testkit's own connections
    /// (stop, replica checks, cluster setup) authenticate with it.
    pub fn password(mut self, password: impl Into<String>) -> Self {
        self.password = Some(password.into());
        self
    }

    /// Adds an ACL rule line, written as `user <line>`, e.g.
    /// `"alice on >pw ~* &* +@all"`.
    pub fn acl_user(mut self, line: impl Into<String>) -> Self {
        self.acl.push(line.into());
        self
    }

    /// Credentials for the testkit's own connections, needed when the default user
    /// cannot run administrative commands (for example when it is disabled by ACL rules).
    pub fn admin_credentials(
        mut self,
        username: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        self.admin = Some((username.into(), password.into()));
        self
    }

    /// How long to wait for the server to answer PING after starting (default 10 s).
    pub fn startup_timeout(mut self, timeout: Duration) -> Self {
        self.startup_timeout = timeout;
        self
    }

    /// Runs this `valkey-server` binary instead of the one found by
    /// [`valkey_server_path`](crate::valkey_server_path).
    pub fn binary(mut self, path: impl Into<PathBuf>) -> Self {
        self.binary = Some(path.into());
        self
    }

    /// Makes the server a replica of `127.0.0.1:<primary_port>` (`replicaof`).
    pub fn replica_of(self, primary_port: u16) -> Self {
        self.config("replicaof", format!("127.0.0.1 {primary_port}"))
    }

    pub(crate) fn auth(&self) -> Auth {
        match &self.admin {
            Some((user, pass)) => Auth {
                username: Some(user.clone()),
                password: Some(pass.clone()),
            },
            None => Auth {
                username: None,
                password: self.password.clone(),
            },
        }
    }

    /// The contents of the generated config file.
    pub(crate) fn render(&self, port: u16, dir: &Path) -> String {
        let mut out = String::new();
        let mut line = |k: &str, v: &str| {
            out.push_str(k);
            out.push(' ');
            out.push_str(v);
            out.push('\n');
        };
        line("bind", "127.0.0.1");
        line("port", &port.to_string());
        line("dir", &quote(&dir.to_string_lossy()));
        line("enable-debug-command", "yes");
        line("save", "\"\"");
        line("appendonly", "no");
        line("logfile", &quote(&dir.join(LOG_FILE).to_string_lossy()));
        line("daemonize", "no");
        line("protected-mode", "no");
        // Start full syncs at once instead of waiting 5 s for more replicas to join.
        line("repl-diskless-sync-delay", "0");
        if self.unix_socket {
            line(
                "unixsocket",
                &quote(&dir.join(SOCKET_FILE).to_string_lossy()),
            );
            line("unixsocketperm", "700");
        }
        if let Some(password) = &self.password {
            line("requirepass", &quote(password));
        }
        for rule in &self.acl {
            line("user", rule);
        }
        for (key, value) in &self.overrides {
            line(key, value);
        }
        out
    }
}

/// File name of the server log inside its directory.
pub(crate) const LOG_FILE: &str = "valkey.log";
/// File name of the unix socket inside the server directory.
pub(crate) const SOCKET_FILE: &str = "valkey.sock";
/// File name of the config file inside the server directory.
pub(crate) const CONFIG_FILE: &str = "valkey.conf";

/// Quotes a value for the Valkey config file parser.
fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_contains_overrides_last() {
        let text = ServerConfig::new()
            .config("maxmemory", "10mb")
            .password("p\"w")
            .render(1234, Path::new("/tmp/x y"));
        assert!(text.contains("port 1234\n"));
        assert!(text.contains("dir \"/tmp/x y\"\n"));
        assert!(text.contains("requirepass \"p\\\"w\"\n"));
        assert!(text.ends_with("maxmemory 10mb\n"));
        assert!(!text.contains("unixsocket"));
    }
}
