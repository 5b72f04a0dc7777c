//! TLS through a real TLS endpoint: Debian's stunnel4 in front of
//! valkey-server 9.1.2 (which is built without TLS), with certificates made
//! for the test.

use valkey_client::{Cmd, Connection, ConnectionConfig, ErrorKind, TlsConfig};

mod common;

use common::{server_behind_tls, tls_config};

#[tokio::test]
async fn verified_tls_connection_works() {
    let (_server, tls) = server_behind_tls(false).await;
    // By IP address and by name: the certificate carries both.
    for host in ["127.0.0.1", "localhost"] {
        let mut conn = Connection::connect(&tls_config(&tls, host, tls.ca_cert_pem()))
            .await
            .unwrap_or_else(|e| panic!("{host}: {e}\n{}", tls.log_tail(20)));
        let pong = conn.request(&Cmd::new("PING")).await.unwrap();
        assert_eq!(pong.as_str(), Some("PONG"));
        conn.request(&Cmd::new("SET").arg("tls-key").arg(host))
            .await
            .unwrap();
        let got = conn.request(&Cmd::new("GET").arg("tls-key")).await.unwrap();
        assert_eq!(got.as_str(), Some(host));
    }
}

#[tokio::test]
async fn certificate_that_does_not_verify_is_refused() {
    let (_server, tls) = server_behind_tls(false).await;
    // Signed by a CA we do not trust.
    let err = Connection::connect(&tls_config(&tls, "127.0.0.1", tls.other_ca_cert_pem()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Tls, "{err}");
    assert!(err.to_string().contains("TLS handshake"), "{err}");
    // The default roots (Mozilla's) do not know the test CA either.
    let default_roots = ConnectionConfig::tcp("127.0.0.1", tls.port()).tls(TlsConfig::new());
    let err = Connection::connect(&default_roots).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Tls, "{err}");
    // A trusted CA but a name the certificate does not carry.
    let wrong_name = ConnectionConfig::tcp("127.0.0.1", tls.port()).tls(
        TlsConfig::new()
            .ca_cert_pem(tls.ca_cert_pem())
            .server_name("not-the-server.example"),
    );
    let err = Connection::connect(&wrong_name).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Tls, "{err}");
}

#[tokio::test]
async fn client_certificate() {
    let (_server, tls) = server_behind_tls(true).await;
    let with_cert = ConnectionConfig::tcp("127.0.0.1", tls.port()).tls(
        TlsConfig::new()
            .ca_cert_pem(tls.ca_cert_pem())
            .client_cert_pem(tls.client_cert_pem(), tls.client_key_pem()),
    );
    let mut conn = Connection::connect(&with_cert)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", tls.log_tail(20)));
    assert_eq!(
        conn.request(&Cmd::new("PING")).await.unwrap().as_str(),
        Some("PONG")
    );
    // Without the certificate the terminator hangs up during the handshake.
    let without = tls_config(&tls, "127.0.0.1", tls.ca_cert_pem());
    let err = Connection::connect(&without).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connection, "{err}");
}

#[tokio::test]
async fn valkeys_url_turns_tls_on() {
    let (_server, tls) = server_behind_tls(false).await;
    let url = format!("valkeys://127.0.0.1:{}", tls.port());
    let config: ConnectionConfig = url.parse().unwrap();
    assert!(config.tls_config().is_some());
    let config = config.tls(TlsConfig::new().ca_cert_pem(tls.ca_cert_pem()));
    let mut conn = Connection::connect(&config).await.unwrap();
    assert_eq!(
        conn.request(&Cmd::new("PING")).await.unwrap().as_str(),
        Some("PONG")
    );
}

#[tokio::test]
async fn bad_tls_configuration_is_a_clear_error() {
    let config = ConnectionConfig::tcp("127.0.0.1", 1)
        .tls(TlsConfig::new().ca_cert_pem("not a certificate"));
    let err = Connection::connect(&config).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Tls, "{err}");
    assert!(err.to_string().contains("CA certificate"), "{err}");
}
