//! The TLS options beyond PEM files, through stunnel in front of
//! valkey-server as in `tls.rs`: a rustls configuration of the user's own,
//! the platform's certificate store (feature `platform-certs`) and the
//! aws-lc-rs crypto provider (feature `aws-lc-rs`).

use std::sync::Arc;

use rustls::RootCertStore;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use valkey_client::{Cmd, Connection, ConnectionConfig, ErrorKind, TlsConfig};
use valkey_testkit::TlsTerminator;

mod common;

use common::server_behind_tls;

/// The provider the library itself picks with these features.
#[cfg(feature = "aws-lc-rs")]
fn provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::aws_lc_rs::default_provider()
}

#[cfg(all(feature = "ring", not(feature = "aws-lc-rs")))]
fn provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}

/// A rustls configuration trusting only `ca_pem`.
#[cfg(any(feature = "ring", feature = "aws-lc-rs"))]
fn rustls_config(
    provider: rustls::crypto::CryptoProvider,
    ca_pem: &str,
) -> Arc<rustls::ClientConfig> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

async fn assert_ping(config: &ConnectionConfig, tls: &TlsTerminator) {
    let mut conn = Connection::connect(config)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", tls.log_tail(20)));
    let pong = conn.request(&Cmd::new("PING")).await.unwrap();
    assert_eq!(pong.as_str(), Some("PONG"));
}

#[cfg(any(feature = "ring", feature = "aws-lc-rs"))]
#[tokio::test]
async fn a_rustls_config_of_ones_own_is_used_with_the_server_name_override() {
    let (_server, tls) = server_behind_tls(false).await;
    let trusted = rustls_config(provider(), tls.ca_cert_pem());
    // As given.
    let config =
        ConnectionConfig::tcp("localhost", tls.port()).tls(TlsConfig::from_rustls(trusted.clone()));
    assert_ping(&config, &tls).await;
    // By IP address, verified as `localhost`, which the certificate names.
    let config = ConnectionConfig::tcp("127.0.0.1", tls.port())
        .tls(TlsConfig::from_rustls(trusted.clone()).server_name("localhost"));
    assert_ping(&config, &tls).await;
    // The override really is what is verified: a name the certificate
    // does not carry is refused.
    let config = ConnectionConfig::tcp("127.0.0.1", tls.port())
        .tls(TlsConfig::from_rustls(trusted.clone()).server_name("elsewhere.example"));
    let err = Connection::connect(&config).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Tls, "{err}");
    // Its roots are the ones used: trusting another CA fails.
    let untrusted = rustls_config(provider(), tls.other_ca_cert_pem());
    let config =
        ConnectionConfig::tcp("127.0.0.1", tls.port()).tls(TlsConfig::from_rustls(untrusted));
    let err = Connection::connect(&config).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Tls, "{err}");
    assert!(err.to_string().contains("TLS handshake"), "{err}");
    // Certificate settings beside it would be ignored: refused instead,
    // before any connection is made.
    let config = ConnectionConfig::tcp("127.0.0.1", tls.port())
        .tls(TlsConfig::from_rustls(trusted).ca_cert_pem(tls.ca_cert_pem()));
    let err = Connection::connect(&config).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Tls, "{err}");
    assert!(err.to_string().contains("ca_cert_pem"), "{err}");
}

/// With the `aws-lc-rs` feature the library's own configurations use
/// aws-lc-rs (a unit test checks the choice); both ways of connecting work.
#[cfg(feature = "aws-lc-rs")]
#[tokio::test]
async fn aws_lc_rs_provider_connects() {
    let (_server, tls) = server_behind_tls(true).await;
    let config = ConnectionConfig::tcp("127.0.0.1", tls.port()).tls(
        TlsConfig::new()
            .ca_cert_pem(tls.ca_cert_pem())
            .client_cert_pem(tls.client_cert_pem(), tls.client_key_pem()),
    );
    assert_ping(&config, &tls).await;
    // A configuration built on aws-lc-rs by hand, without a client
    // certificate: the terminator hangs up on it.
    let own = rustls_config(
        rustls::crypto::aws_lc_rs::default_provider(),
        tls.ca_cert_pem(),
    );
    let config = ConnectionConfig::tcp("127.0.0.1", tls.port()).tls(TlsConfig::from_rustls(own));
    let err = Connection::connect(&config).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connection, "{err}");
}

/// The platform's store comes from `rustls-native-certs`, which on Linux
/// reads the file named by `SSL_CERT_FILE` instead of the distribution's
/// bundle when it is set. The environment of this process cannot be
/// changed (the crate forbids `unsafe`, which `set_var` needs), so each case
/// runs this test binary again, filtered to [`platform_roots_child`], with
/// the environment it needs.
#[cfg(feature = "platform-certs")]
mod platform {
    use std::path::Path;
    use std::process::Command;

    use super::*;

    const PORT_VAR: &str = "VALKEY_CLIENT_TEST_PLATFORM_PORT";
    const EXPECT_VAR: &str = "VALKEY_CLIENT_TEST_PLATFORM_EXPECT";
    const EXTRA_CA_VAR: &str = "VALKEY_CLIENT_TEST_PLATFORM_EXTRA_CA";
    const CHILD: &str = "platform::platform_roots_child";

    /// Runs the child test against `port` with `SSL_CERT_FILE` set to
    /// `cert_file` (removed when `None`), and fails unless it ran and passed.
    fn run_child(port: u16, cert_file: Option<&Path>, expect: &str, extra_ca: Option<&Path>) {
        let exe = std::env::current_exe().unwrap();
        let mut child = Command::new(exe);
        child
            .args([CHILD, "--exact", "--nocapture", "--test-threads=1"])
            .env(PORT_VAR, port.to_string())
            .env(EXPECT_VAR, expect)
            .env_remove("SSL_CERT_DIR")
            .env_remove(EXTRA_CA_VAR);
        match cert_file {
            Some(file) => child.env("SSL_CERT_FILE", file),
            None => child.env_remove("SSL_CERT_FILE"),
        };
        if let Some(extra) = extra_ca {
            child.env(EXTRA_CA_VAR, extra);
        }
        let out = child.output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "child ({expect}) failed:\n{stdout}\n{stderr}"
        );
        // The filter matched the child test, and it ran.
        assert!(
            stdout.contains("1 passed"),
            "child ({expect}) ran no test:\n{stdout}"
        );
    }

    #[tokio::test]
    async fn platform_roots_follow_the_system_store() {
        let (_server, tls) = server_behind_tls(false).await;
        let port = tls.port();
        // The store holds the test CA: verified.
        run_child(port, Some(&tls.ca_cert_path()), "connects", None);
        // It holds only another CA: the handshake is refused.
        run_child(port, Some(&tls.other_ca_cert_path()), "refused", None);
        // The distribution's own bundle does not know the test CA either
        // (or, on a machine without one, there is no usable store): a TLS
        // error in both cases.
        run_child(port, None, "tls-error", None);
        // CAs given beside the platform's store are trusted too.
        let (other, ca) = (tls.other_ca_cert_path(), tls.ca_cert_path());
        run_child(port, Some(&other), "connects", Some(&ca));
    }

    /// The child half of [`platform_roots_follow_the_system_store`]: does
    /// nothing unless run by it.
    #[tokio::test]
    async fn platform_roots_child() {
        let Ok(port) = std::env::var(PORT_VAR) else {
            return;
        };
        let port: u16 = port.parse().unwrap();
        let mut tls = TlsConfig::new().platform_roots();
        if let Ok(extra) = std::env::var(EXTRA_CA_VAR) {
            tls = tls.ca_cert_pem(std::fs::read(extra).unwrap());
        }
        let config = ConnectionConfig::tcp("127.0.0.1", port).tls(tls);
        let result = Connection::connect(&config).await;
        match std::env::var(EXPECT_VAR).unwrap().as_str() {
            "connects" => {
                let mut conn = result.unwrap();
                let pong = conn.request(&Cmd::new("PING")).await.unwrap();
                assert_eq!(pong.as_str(), Some("PONG"));
            }
            "refused" => {
                let err = result.unwrap_err();
                assert_eq!(err.kind(), ErrorKind::Tls, "{err}");
                assert!(err.to_string().contains("TLS handshake"), "{err}");
            }
            "tls-error" => {
                let err = result.unwrap_err();
                assert_eq!(err.kind(), ErrorKind::Tls, "{err}");
            }
            other => panic!("unknown expectation {other}"),
        }
    }
}
