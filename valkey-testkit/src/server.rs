//! [`Server`]: one `valkey-server` process in its own temporary directory.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use tempfile::TempDir;
use valkey_client::{Connection, ConnectionConfig};

use crate::admin::{self, Auth};
use crate::config::{CONFIG_FILE, LOG_FILE, SOCKET_FILE, ServerConfig};
use crate::ports::free_port;

mod freeze;

/// How often to retry on a fresh port when the chosen one was taken by a race.
const PORT_ATTEMPTS: usize = 5;
/// Poll interval while waiting for a server.
const POLL: Duration = Duration::from_millis(20);
/// How long `stop` waits for a clean exit before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// Lines of log included in error messages.
const ERROR_LOG_LINES: usize = 30;
/// File that receives the process's stdout and stderr (messages before the log opens).
const OUTPUT_FILE: &str = "valkey.out";

/// A running `valkey-server` process listening on `127.0.0.1`.
///
/// The process runs in its own temporary directory (config file, log, RDB, optional
/// unix socket), which is deleted on drop. Dropping a `Server`, also while a test
/// panics, kills the process with SIGKILL and reaps it (a
/// [frozen](Server::freeze) process is sent SIGCONT first).
#[derive(Debug)]
pub struct Server {
    config: ServerConfig,
    binary: PathBuf,
    port: u16,
    child: Option<Child>,
    last_pid: u32,
    dir: TempDir,
    /// Set while the process is stopped with SIGSTOP by [`Server::freeze`].
    frozen: AtomicBool,
}

impl Server {
    /// Starts a server and waits until it answers PING.
    ///
    /// If the server cannot bind its (automatically chosen) port because another
    /// process took it, it is retried on a new port a few times. On failure the error
    /// includes the tail of the server log.
    pub async fn start(config: ServerConfig) -> io::Result<Server> {
        let binary = match &config.binary {
            Some(path) => path.clone(),
            None => tokio::task::spawn_blocking(crate::binary::valkey_server_path)
                .await
                .map_err(io::Error::other)??,
        };
        let dir = tempfile::Builder::new()
            .prefix("valkey-testkit-")
            .tempdir()?;
        let attempts = if config.port.is_some() {
            1
        } else {
            PORT_ATTEMPTS
        };
        let mut last_error = io::Error::other("server did not start");
        for _ in 0..attempts {
            let port = config.port.unwrap_or_else(free_port);
            std::fs::write(
                dir.path().join(CONFIG_FILE),
                config.render(port, dir.path()),
            )?;
            match launch(&binary, dir.path(), port, &config).await {
                Ok(child) => {
                    let last_pid = child.id();
                    return Ok(Server {
                        config,
                        binary,
                        port,
                        child: Some(child),
                        last_pid,
                        dir,
                        frozen: AtomicBool::new(false),
                    });
                }
                Err(LaunchError {
                    port_in_use: true,
                    error,
                }) => {
                    tracing::debug!("port {port} was taken, retrying on another: {error}");
                    last_error = error;
                }
                Err(LaunchError { error, .. }) => return Err(error),
            }
        }
        Err(last_error)
    }

    /// Starts a replica of this server (`replicaof 127.0.0.1 <port>`, with `masterauth`
    /// if this server has a password) and waits until its replication link is up.
    pub async fn start_replica_of(&self) -> io::Result<Server> {
        let mut config = ServerConfig::new().replica_of(self.port);
        if let Some(password) = &self.config.password {
            config = config
                .password(password.clone())
                .config("masterauth", quote(password));
        }
        let replica = Server::start(config).await?;
        replica
            .wait_for_replication_link(self.config.startup_timeout)
            .await?;
        Ok(replica)
    }

    /// Waits until `INFO replication` on this server reports `master_link_status:up`.
    pub async fn wait_for_replication_link(&self, timeout: Duration) -> io::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let info = self.info("replication").await;
            if let Ok(text) = &info
                && info_field(text, "master_link_status") == Some("up")
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "replica on port {} did not sync within {timeout:?} (last INFO: {info:?})\n{}",
                        self.port,
                        self.log_tail(ERROR_LOG_LINES)
                    ),
                ));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The TCP port the server listens on (on 127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The host the server listens on: `"127.0.0.1"`.
    pub fn host(&self) -> &'static str {
        "127.0.0.1"
    }

    /// `"127.0.0.1:<port>"`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `"valkey://127.0.0.1:<port>"`.
    pub fn url(&self) -> String {
        format!("valkey://127.0.0.1:{}", self.port)
    }

    /// The unix socket path, if the server was configured with
    /// [`ServerConfig::unix_socket`].
    pub fn unix_socket_path(&self) -> Option<PathBuf> {
        self.config
            .unix_socket
            .then(|| self.dir.path().join(SOCKET_FILE))
    }

    /// The server's working directory (config file, log, RDB file).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The configuration the server was started with.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// The process id of the running process, or `None` after [`stop`](Self::stop) or
    /// [`kill`](Self::kill).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|_| self.last_pid)
    }

    /// The process id of the most recent process, running or not.
    pub fn last_pid(&self) -> u32 {
        self.last_pid
    }

    /// Returns `true` while the process is running (it has not exited on its own, nor
    /// been stopped or killed).
    pub fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// The last `lines` lines of the server log and of its stdout/stderr.
    pub fn log_tail(&self, lines: usize) -> String {
        log_tail(self.dir.path(), lines)
    }

    /// Runs `INFO <section>` and returns the text.
    pub async fn info(&self, section: &str) -> io::Result<String> {
        admin::call_str(self.port, &self.auth(), &["INFO", section]).await
    }

    /// Stops the server cleanly (`SHUTDOWN NOSAVE NOW`, else SIGTERM) and waits for the
    /// process to exit; after 10 s it is killed. Does nothing if it is not running.
    /// A [frozen](Self::freeze) server is thawed first, so that it can answer.
    pub async fn stop(&mut self) -> io::Result<()> {
        self.thaw_before_exit();
        let auth = self.auth();
        let Some(child) = &mut self.child else {
            return Ok(());
        };
        if child.try_wait()?.is_none() {
            let shutdown = admin::call(self.port, &auth, &["SHUTDOWN", "NOSAVE", "NOW"]).await;
            if let Err(e) = &shutdown
                && admin::reply_code(e).is_some()
            {
                // A server error reply (e.g. NOAUTH): fall back to a signal.
                let _ = Command::new("kill")
                    .args(["-TERM", &self.last_pid.to_string()])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }
            let deadline = Instant::now() + STOP_TIMEOUT;
            while child.try_wait()?.is_none() {
                if Instant::now() >= deadline {
                    tracing::warn!("server on port {} did not stop, killing it", self.port);
                    let _ = child.kill();
                    child.wait()?;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        self.child = None;
        Ok(())
    }

    /// Kills the server with SIGKILL and reaps it. Does nothing if it is not running.
    /// A [frozen](Self::freeze) server is sent SIGCONT first.
    pub fn kill(&mut self) {
        self.thaw_before_exit();
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again, after stopping it if it is running, on the same port with
    /// the same directory and config file: an RDB file saved before is loaded again.
    pub async fn restart(&mut self) -> io::Result<()> {
        self.stop().await?;
        let mut attempt = 0;
        loop {
            match launch(&self.binary, self.dir.path(), self.port, &self.config).await {
                Ok(child) => {
                    self.last_pid = child.id();
                    self.child = Some(child);
                    return Ok(());
                }
                // The old socket may linger briefly, or a race took the port: retry.
                Err(LaunchError {
                    port_in_use: true,
                    error,
                }) if attempt < PORT_ATTEMPTS => {
                    tracing::debug!("restart on port {} failed, retrying: {error}", self.port);
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(LaunchError { error, .. }) => return Err(error),
            }
        }
    }

    /// A client configuration for this server over TCP, with the configured password
    /// (or admin credentials).
    pub fn connection_config(&self) -> ConnectionConfig {
        self.auth().connection_config(self.port)
    }

    /// Connects a new `valkey-client` [`Connection`] to this server with
    /// [`connection_config`](Self::connection_config).
    pub async fn connect(&self) -> valkey_client::Result<Connection> {
        Connection::connect(&self.connection_config()).await
    }

    pub(crate) fn auth(&self) -> Auth {
        self.config.auth()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

struct LaunchError {
    port_in_use: bool,
    error: io::Error,
}

/// Spawns the process for the config file in `dir` and waits until it answers PING.
async fn launch(
    binary: &Path,
    dir: &Path,
    port: u16,
    config: &ServerConfig,
) -> Result<Child, LaunchError> {
    let plain = |error: io::Error| LaunchError {
        port_in_use: false,
        error,
    };
    let log_path = dir.join(LOG_FILE);
    let log_start = std::fs::metadata(&log_path).map(|m| m.len()).unwrap_or(0);
    let output = File::options()
        .create(true)
        .append(true)
        .open(dir.join(OUTPUT_FILE))
        .map_err(plain)?;
    let mut child = Command::new(binary)
        .arg(dir.join(CONFIG_FILE))
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(output.try_clone().map_err(plain)?)
        .stderr(output)
        .spawn()
        .map_err(|e| {
            plain(io::Error::new(
                e.kind(),
                format!("spawning {}: {e}", binary.display()),
            ))
        })?;
    let auth = config.auth();
    let deadline = Instant::now() + config.startup_timeout;
    let failure = loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                break format!("valkey-server on port {port} exited during startup ({status})");
            }
            Ok(None) => {}
            Err(e) => break format!("waiting for valkey-server on port {port}: {e}"),
        }
        match admin::call(port, &auth, &["PING"]).await {
            Ok(_) => return Ok(child),
            // The server is up but wants authentication: it is ready.
            Err(e) if matches!(admin::reply_code(&e), Some("NOAUTH" | "WRONGPASS")) => {
                return Ok(child);
            }
            Err(_) => {}
        }
        if Instant::now() >= deadline {
            break format!(
                "valkey-server on port {port} did not answer PING within {:?}",
                config.startup_timeout
            );
        }
        tokio::time::sleep(POLL).await;
    };
    let _ = child.kill();
    let _ = child.wait();
    let new_log = std::fs::read(&log_path)
        .map(|bytes| {
            String::from_utf8_lossy(&bytes[(log_start as usize).min(bytes.len())..]).into_owned()
        })
        .unwrap_or_default();
    let port_in_use = new_log.contains("Address already in use");
    let message = format!("{failure}\n{}", log_tail(dir, ERROR_LOG_LINES));
    Err(LaunchError {
        port_in_use,
        error: io::Error::other(message),
    })
}

/// The last `lines` lines of the log and of stdout/stderr in `dir`.
fn log_tail(dir: &Path, lines: usize) -> String {
    let mut out = String::new();
    for name in [LOG_FILE, OUTPUT_FILE] {
        let text = std::fs::read(dir.join(name)).unwrap_or_default();
        let text = String::from_utf8_lossy(&text);
        let tail: Vec<&str> = text.lines().rev().take(lines).collect();
        if tail.is_empty() {
            continue;
        }
        out.push_str(&format!("--- {name} (last {} lines) ---\n", tail.len()));
        for line in tail.iter().rev() {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// Extracts `field` from the text of an INFO reply.
pub fn info_field<'a>(info: &'a str, field: &str) -> Option<&'a str> {
    info.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        (key == field).then(|| value.trim())
    })
}

fn quote(value: &str) -> String {
    format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
}
