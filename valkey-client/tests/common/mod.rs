//! Helpers shared by the integration tests. Each test binary uses a subset,
//! hence the `dead_code` allowance.
#![allow(dead_code)]

use valkey_client::{
    ConnectionConfig, ExponentialBackoff, Retry, TlsConfig, Valkey, ValkeyBuilder,
};
use valkey_testkit::{FaultProxy, Server, ServerConfig, TlsOptions, TlsTerminator};

pub mod cluster;
pub mod every_command;

/// A server that puts every write on disk before replying (AOF, fsync
/// always), so a kill or restart loses nothing: tests can then require that
/// each read sees the write before it.
pub async fn durable_server() -> Server {
    Server::start(
        ServerConfig::new()
            .config("appendonly", "yes")
            .config("appendfsync", "always"),
    )
    .await
    .expect("start a durable valkey-server")
}

/// A server with a `FaultProxy` in front of it.
pub async fn server_and_proxy() -> (Server, FaultProxy) {
    let server = Server::start(ServerConfig::new())
        .await
        .expect("start a valkey-server");
    let proxy = FaultProxy::start(server.port())
        .await
        .expect("start the fault proxy");
    (server, proxy)
}

/// A client through the proxy, with 3 retries.
pub fn through(proxy: &FaultProxy) -> ValkeyBuilder {
    Valkey::builder()
        .host("127.0.0.1")
        .port(proxy.port())
        .retry(Retry::new(ExponentialBackoff::default(), 3))
}

/// 16, 32, ... 512 ms: about 4.5 s of backoff in all, more than a restart.
pub fn patient_retry() -> Retry {
    Retry::new(ExponentialBackoff::default(), 12)
}

/// A client of `server` that outlasts a restart.
pub async fn patient_client(server: &Server) -> Valkey {
    Valkey::builder()
        .host("127.0.0.1")
        .port(server.port())
        .retry(patient_retry())
        .build()
        .await
        .expect("connect")
}

/// Lets a load loop run for a moment, then kills the server, leaves it down
/// for 200 ms and starts it again on the same port.
pub async fn bounce_under_load(server: &mut Server) {
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    server.kill();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    server.restart().await.expect("restart the server");
}

/// A client builder for `127.0.0.1:port`, with the library's defaults.
pub fn local(port: u16) -> ValkeyBuilder {
    Valkey::builder().host("127.0.0.1").port(port)
}

/// `blocked_clients` from the server's `INFO clients`: how many clients
/// wait in a blocking command right now.
pub async fn blocked_clients(server: &Server) -> usize {
    let info = server.info("clients").await.expect("INFO clients");
    valkey_testkit::info_field(&info, "blocked_clients")
        .and_then(|v| v.parse().ok())
        .expect("blocked_clients in INFO clients")
}

/// Polls `blocked_clients` every 10 ms until it is `n`, for at most `limit`;
/// whether it got there.
pub async fn wait_blocked_clients(server: &Server, n: usize, limit: std::time::Duration) -> bool {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if blocked_clients(server).await == n {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// A server with a TLS terminator (stunnel) in front of it; with
/// `require_client_cert`, clients must present the test client certificate.
pub async fn server_behind_tls(require_client_cert: bool) -> (Server, TlsTerminator) {
    let server = Server::start(ServerConfig::new())
        .await
        .expect("start a valkey-server");
    let tls = TlsTerminator::start(
        server.port(),
        TlsOptions {
            require_client_cert,
        },
    )
    .await
    .expect("start the TLS terminator");
    (server, tls)
}

/// A connection to the TLS terminator as `host`, trusting `ca_pem`.
pub fn tls_config(tls: &TlsTerminator, host: &str, ca_pem: &str) -> ConnectionConfig {
    ConnectionConfig::tcp(host, tls.port()).tls(TlsConfig::new().ca_cert_pem(ca_pem))
}

/// Puts `server` to sleep for `seconds` (`DEBUG SLEEP`, from a connection
/// of its own) and returns once the sleep has surely begun; await the
/// handle to know it has ended.
pub async fn debug_sleep(server: &Server, seconds: f64) -> tokio::task::JoinHandle<()> {
    let mut admin = server.connect().await.expect("connect to sleep the server");
    let sleeper = tokio::spawn(async move {
        admin
            .request(&valkey_client::Cmd::new("DEBUG").arg("SLEEP").arg(seconds))
            .await
            .expect("DEBUG SLEEP");
    });
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    sleeper
}
