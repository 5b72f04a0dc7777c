//! [`TlsTerminator`]: stunnel in front of a server, for TLS tests against a
//! `valkey-server` built without TLS.

use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::binary::find_on_path;
use crate::certs::TestCerts;
use crate::ports::free_port;

/// Attempts on fresh ports when the chosen one was taken by a race.
const PORT_ATTEMPTS: usize = 5;
/// How long to wait for stunnel to accept connections.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);
const LOG_FILE: &str = "stunnel.log";

/// Options of a [`TlsTerminator`].
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    /// Require clients to present a certificate signed by the test CA (`verify = 2`).
    pub require_client_cert: bool,
}

/// A TLS terminator (Debian's `stunnel4`) listening on 127.0.0.1 and forwarding the
/// decrypted stream to a backend port, with freshly generated certificates:
/// a CA, a server certificate for `localhost` and `127.0.0.1`, and a client
/// certificate. The stunnel process is killed on drop.
#[derive(Debug)]
pub struct TlsTerminator {
    port: u16,
    backend_port: u16,
    certs: TestCerts,
    child: Option<Child>,
    dir: TempDir,
}

/// Finds the stunnel binary: `stunnel4` or `stunnel` on `PATH`.
pub fn stunnel_path() -> io::Result<PathBuf> {
    find_on_path("stunnel4")
        .or_else(|| find_on_path("stunnel"))
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                "stunnel not found on PATH (looked for `stunnel4` and `stunnel`); install it, \
             e.g. `apt-get install stunnel4`",
            )
        })
}

impl TlsTerminator {
    /// Generates certificates, starts stunnel forwarding a new port to
    /// `127.0.0.1:<backend_port>` and waits until the port accepts TCP connections.
    pub async fn start(backend_port: u16, options: TlsOptions) -> io::Result<TlsTerminator> {
        let stunnel = stunnel_path()?;
        let certs = TestCerts::generate()?;
        let dir = tempfile::Builder::new()
            .prefix("valkey-testkit-tls-")
            .tempdir()?;
        let files = [
            ("ca.pem", &certs.ca.cert),
            ("server.pem", &certs.server.cert),
            ("server.key", &certs.server.key),
            ("client.pem", &certs.client.cert),
            ("client.key", &certs.client.key),
            ("other-ca.pem", &certs.other_ca.cert),
        ];
        for (name, contents) in files {
            std::fs::write(dir.path().join(name), contents)?;
        }
        let mut last_error = io::Error::other("stunnel did not start");
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port();
            let config = render(dir.path(), port, backend_port, &options);
            std::fs::write(dir.path().join("stunnel.conf"), config)?;
            let _ = std::fs::remove_file(dir.path().join(LOG_FILE));
            match launch(&stunnel, dir.path(), port).await {
                Ok(child) => {
                    return Ok(TlsTerminator {
                        port,
                        backend_port,
                        certs,
                        child: Some(child),
                        dir,
                    });
                }
                Err((true, error)) => last_error = error,
                Err((false, error)) => return Err(error),
            }
        }
        Err(last_error)
    }

    /// The TLS port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The backend port the decrypted stream is forwarded to.
    pub fn backend_port(&self) -> u16 {
        self.backend_port
    }

    /// The generated certificates (CA, server, client, unrelated CA), PEM.
    pub fn certs(&self) -> &TestCerts {
        &self.certs
    }

    /// The CA certificate that signed the server and client certificates, PEM.
    pub fn ca_cert_pem(&self) -> &str {
        &self.certs.ca.cert
    }

    /// Path of the CA certificate file.
    pub fn ca_cert_path(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The client certificate, PEM.
    pub fn client_cert_pem(&self) -> &str {
        &self.certs.client.cert
    }

    /// The client private key, PEM.
    pub fn client_key_pem(&self) -> &str {
        &self.certs.client.key
    }

    /// Path of the client certificate file.
    pub fn client_cert_path(&self) -> PathBuf {
        self.dir.path().join("client.pem")
    }

    /// Path of the client private key file.
    pub fn client_key_path(&self) -> PathBuf {
        self.dir.path().join("client.key")
    }

    /// The certificate of an unrelated CA, PEM: a client trusting only this CA must
    /// fail to verify the terminator's certificate.
    pub fn other_ca_cert_pem(&self) -> &str {
        &self.certs.other_ca.cert
    }

    /// Path of the unrelated CA certificate file.
    pub fn other_ca_cert_path(&self) -> PathBuf {
        self.dir.path().join("other-ca.pem")
    }

    /// The last `lines` lines of stunnel's log.
    pub fn log_tail(&self, lines: usize) -> String {
        log_tail(self.dir.path(), lines)
    }

    /// Kills stunnel and waits for it to exit. Also done on drop.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The process id of stunnel, or `None` after [`kill`](Self::kill).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }
}

impl Drop for TlsTerminator {
    fn drop(&mut self) {
        self.kill();
    }
}

fn render(dir: &Path, port: u16, backend_port: u16, options: &TlsOptions) -> String {
    let path = |name: &str| dir.join(name).display().to_string();
    let mut config = format!(
        "foreground = yes\npid =\noutput = {log}\ndebug = 5\n\n[valkey]\n\
         accept = 127.0.0.1:{port}\nconnect = 127.0.0.1:{backend_port}\n\
         cert = {cert}\nkey = {key}\n",
        log = path(LOG_FILE),
        cert = path("server.pem"),
        key = path("server.key"),
    );
    if options.require_client_cert {
        config.push_str(&format!("verify = 2\nCAfile = {}\n", path("ca.pem")));
    }
    config
}

/// Starts stunnel and waits for its port. `Err((true, _))` means the port was busy.
async fn launch(stunnel: &Path, dir: &Path, port: u16) -> Result<Child, (bool, io::Error)> {
    let mut child = Command::new(stunnel)
        .arg(dir.join("stunnel.conf"))
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| {
            (
                false,
                io::Error::new(e.kind(), format!("spawning {}: {e}", stunnel.display())),
            )
        })?;
    let deadline = Instant::now() + STARTUP_TIMEOUT;
    let failure = loop {
        match child.try_wait() {
            Ok(Some(status)) => break format!("stunnel exited during startup ({status})"),
            Ok(None) => {}
            Err(e) => break format!("waiting for stunnel: {e}"),
        }
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(child);
        }
        if Instant::now() >= deadline {
            break format!(
                "stunnel did not accept connections on port {port} within {STARTUP_TIMEOUT:?}"
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let _ = child.kill();
    let _ = child.wait();
    let log = log_tail(dir, 30);
    let busy = log.contains("Address already in use");
    Err((busy, io::Error::other(format!("{failure}\n{log}"))))
}

fn log_tail(dir: &Path, lines: usize) -> String {
    let text = std::fs::read(dir.join(LOG_FILE)).unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let tail: Vec<&str> = text.lines().rev().take(lines).collect();
    tail.into_iter().rev().map(|l| format!("{l}\n")).collect()
}
