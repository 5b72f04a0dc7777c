//! Administrative commands sent to test servers (readiness probes, cluster setup).
//!
//! Every call opens a short-lived connection, authenticates if needed, sends one
//! command with the `valkey-client` connection and reads one reply. Server error
//! replies become `io::Error`s of kind `Other` carrying a [`ReplyError`].

use std::io;
use std::time::Duration;

use valkey_client::{Cmd, Connection, ConnectionConfig, Value};

/// Timeout for one administrative round trip.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// Credentials used for administrative connections.
#[derive(Debug, Clone, Default)]
pub(crate) struct Auth {
    pub(crate) username: Option<String>,
    pub(crate) password: Option<String>,
}

/// Sends `args` to `127.0.0.1:port` and returns the reply.
pub(crate) async fn call(port: u16, auth: &Auth, args: &[&str]) -> io::Result<Value> {
    tokio::time::timeout(CALL_TIMEOUT, call_inner(port, auth, args))
        .await
        .map_err(|_| {
            io::Error::new(
                io::ErrorKind::TimedOut,
                format!("{args:?} on port {port} timed out"),
            )
        })?
}

/// Sends `args` and returns the reply as text (bulk, simple or verbatim string).
pub(crate) async fn call_str(port: u16, auth: &Auth, args: &[&str]) -> io::Result<String> {
    let value = call(port, auth, args).await?;
    value.as_str().map(str::to_owned).ok_or_else(|| {
        io::Error::other(format!(
            "{args:?} on port {port}: unexpected reply {value:?}"
        ))
    })
}

async fn call_inner(port: u16, auth: &Auth, args: &[&str]) -> io::Result<Value> {
    let mut conn = Connection::connect(&auth.connection_config(port))
        .await
        .map_err(to_io)?;
    let (name, rest) = args
        .split_first()
        .ok_or_else(|| io::Error::other("empty command"))?;
    let cmd = Cmd::new(name).args(rest.iter().copied());
    conn.request(&cmd).await.map_err(to_io)
}

/// A kept-open administrative connection to one node, for polling loops and
/// pipelines. Every round trip is bounded by the same per-call timeout as [`call`].
pub(crate) struct AdminConn {
    port: u16,
    conn: Connection,
}

impl AdminConn {
    /// Connects to `127.0.0.1:port` and authenticates with `auth`.
    pub(crate) async fn connect(port: u16, auth: &Auth) -> io::Result<AdminConn> {
        let conn = tokio::time::timeout(
            CALL_TIMEOUT,
            Connection::connect(&auth.connection_config(port)),
        )
        .await
        .map_err(|_| {
            io::Error::new(
                io::ErrorKind::TimedOut,
                format!("connecting to port {port} timed out"),
            )
        })?
        .map_err(to_io)?;
        Ok(AdminConn { port, conn })
    }

    /// Sends one command and returns its reply; a server error reply is an `Err`.
    pub(crate) async fn call(&mut self, cmd: &Cmd) -> io::Result<Value> {
        let port = self.port;
        tokio::time::timeout(CALL_TIMEOUT, self.conn.request(cmd))
            .await
            .map_err(|_| {
                io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("{} on port {port} timed out", cmd.name()),
                )
            })?
            .map_err(to_io)
    }

    /// Sends `cmds` in one write and returns one result per command. The outer
    /// error is a failure of the connection; each reply is waited for at most the
    /// per-call timeout.
    pub(crate) async fn pipeline(&mut self, cmds: &[Cmd]) -> io::Result<Vec<io::Result<Value>>> {
        let replies = self.conn.pipeline(cmds).await.map_err(to_io)?;
        Ok(replies
            .into_iter()
            .map(|reply| reply.map_err(to_io))
            .collect())
    }

    /// The port this connection goes to.
    pub(crate) fn port(&self) -> u16 {
        self.port
    }
}

impl Auth {
    /// Arguments that make `MIGRATE` authenticate to a target with these
    /// credentials: `AUTH2 <user> <password>`, `AUTH <password>` or none.
    pub(crate) fn migrate_args(&self) -> Vec<&str> {
        match (&self.username, &self.password) {
            (Some(user), Some(password)) => vec!["AUTH2", user, password],
            (None, Some(password)) => vec!["AUTH", password],
            _ => Vec::new(),
        }
    }

    /// A client configuration for `127.0.0.1:port` with these credentials.
    pub(crate) fn connection_config(&self, port: u16) -> ConnectionConfig {
        let mut config = ConnectionConfig::tcp("127.0.0.1", port)
            .set_lib_info(false)
            .connect_timeout(Some(CALL_TIMEOUT))
            .response_timeout(Some(CALL_TIMEOUT));
        if let Some(user) = &self.username {
            config = config.username(user.clone());
        }
        if let Some(password) = &self.password {
            config = config.password(password.clone());
        }
        config
    }
}

/// A server error reply, carried inside an `io::Error` of kind `Other`.
#[derive(Debug)]
pub(crate) struct ReplyError {
    code: String,
    text: String,
}

impl std::fmt::Display for ReplyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::error::Error for ReplyError {}

/// The error code (`NOAUTH`, `ERR`, ...) if `error` is a server error reply.
pub(crate) fn reply_code(error: &io::Error) -> Option<&str> {
    error
        .get_ref()?
        .downcast_ref::<ReplyError>()
        .map(|r| r.code.as_str())
}

fn to_io(error: valkey_client::Error) -> io::Error {
    match error.code() {
        Some(code) => io::Error::other(ReplyError {
            code: code.to_owned(),
            text: error.to_string(),
        }),
        None => io::Error::new(io::ErrorKind::ConnectionAborted, error.to_string()),
    }
}
