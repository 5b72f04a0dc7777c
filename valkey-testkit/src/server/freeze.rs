//! Freezing a [`Server`] with SIGSTOP and thawing it with SIGCONT.

use std::io;
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::Server;

/// How long `freeze` and `thaw` wait for the kernel to report the new process state.
const STATE_TIMEOUT: Duration = Duration::from_secs(2);
/// Poll interval while waiting for the process state.
const STATE_POLL: Duration = Duration::from_millis(1);

impl Server {
    /// Freezes the process with SIGSTOP.
    ///
    /// A frozen server keeps its sockets open: the kernel still accepts TCP
    /// connections and buffers requests, but nothing is answered, as with a hung
    /// host. Cluster peers mark it as failed after `cluster-node-timeout`. Undo with
    /// [`thaw`](Self::thaw); [`stop`](Self::stop), [`kill`](Self::kill) and drop thaw
    /// a frozen server before ending it.
    ///
    /// Returns once the kernel reports the process as stopped (checked in `/proc`
    /// where it exists, for at most 2 s). Freezing a frozen server does nothing.
    ///
    /// # Errors
    ///
    /// If the server is not running, the signal cannot be sent, or the process
    /// does not stop in time.
    pub fn freeze(&self) -> io::Result<()> {
        let pid = self.running_pid("freeze")?;
        if self.frozen.load(Ordering::SeqCst) {
            return Ok(());
        }
        signal(pid, "STOP")?;
        self.frozen.store(true, Ordering::SeqCst);
        wait_for_state(pid, |state| state == 'T', "stopped")
    }

    /// Resumes a [frozen](Self::freeze) process with SIGCONT. It then answers the
    /// requests that queued up while it was frozen.
    ///
    /// Thawing a server that is not frozen sends SIGCONT anyway, which is harmless.
    /// Returns once the kernel no longer reports the process as stopped (checked
    /// in `/proc` where it exists, for at most 2 s).
    ///
    /// # Errors
    ///
    /// If the server is not running, the signal cannot be sent, or the process
    /// does not resume in time.
    pub fn thaw(&self) -> io::Result<()> {
        let pid = self.running_pid("thaw")?;
        signal(pid, "CONT")?;
        self.frozen.store(false, Ordering::SeqCst);
        wait_for_state(pid, |state| state != 'T', "resumed")
    }

    /// Whether the server was [frozen](Self::freeze) and not thawed since.
    pub fn is_frozen(&self) -> bool {
        self.frozen.load(Ordering::SeqCst)
    }

    /// Sends SIGCONT to a frozen process that is about to be stopped or killed, so
    /// that it can answer `SHUTDOWN` and no stopped process is left behind.
    pub(super) fn thaw_before_exit(&mut self) {
        if self.frozen.swap(false, Ordering::SeqCst)
            && self.child.is_some()
            && let Err(e) = signal(self.last_pid, "CONT")
        {
            tracing::warn!("thawing server on port {}: {e}", self.port);
        }
    }

    fn running_pid(&self, what: &str) -> io::Result<u32> {
        self.pid().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotConnected,
                format!(
                    "cannot {what} the server on port {}: it is not running",
                    self.port
                ),
            )
        })
    }
}

/// Sends `SIG<name>` to `pid` with the `kill` program.
fn signal(pid: u32, name: &str) -> io::Result<()> {
    let output = Command::new("kill")
        .args([format!("-{name}"), pid.to_string()])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| io::Error::new(e.kind(), format!("running kill -{name} {pid}: {e}")))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "kill -{name} {pid} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )))
    }
}

/// The state letter of `pid` in `/proc/<pid>/stat` (`R`, `S`, `T`, `Z`, ...), or
/// `None` where there is no such file.
fn process_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) S ...`: the command name may hold spaces and parentheses.
    let (_, rest) = stat.rsplit_once(')')?;
    rest.trim_start().chars().next()
}

/// Waits until the state of `pid` satisfies `done`, for at most [`STATE_TIMEOUT`].
/// Returns at once where `/proc` cannot tell.
fn wait_for_state(pid: u32, done: impl Fn(char) -> bool, what: &str) -> io::Result<()> {
    let deadline = Instant::now() + STATE_TIMEOUT;
    loop {
        let state = match process_state(pid) {
            None if std::path::Path::new("/proc/self/stat").exists() => {
                return Err(io::Error::other(format!("process {pid} is gone")));
            }
            None => return Ok(()),
            Some('Z' | 'X') => {
                return Err(io::Error::other(format!("process {pid} has exited")));
            }
            Some(state) => state,
        };
        if done(state) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("process {pid} was not {what} within {STATE_TIMEOUT:?} (state {state})"),
            ));
        }
        std::thread::sleep(STATE_POLL);
    }
}
