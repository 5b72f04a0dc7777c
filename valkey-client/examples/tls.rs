//! TLS: a `valkeys://` URL, the certificate verified against a CA you give
//! (`TlsConfig::ca_cert_pem`), and what a certificate that does not verify
//! gives.
//!
//! Without `VALKEY_TLS_URL`, a valkey-server is started behind the test
//! kit's TLS terminator (Debian's stunnel4; `apt-get install stunnel4`),
//! with certificates made on the fly.
//!
//! ```text
//! cargo run --example tls
//! VALKEY_TLS_URL=valkeys://127.0.0.1:6380 VALKEY_TLS_CA_FILE=ca.pem cargo run --example tls
//! ```

#[path = "support/mod.rs"]
mod support;

use support::check;
use valkey_client::{Commands, ConnectionConfig, ErrorKind, TlsConfig, Valkey};

#[tokio::main]
async fn main() -> support::Result {
    let target = support::tls().await?;

    // The URL says TLS (`valkeys://` or `rediss://`); the CA is given as
    // PEM. Without `ca_cert_pem`, the Mozilla roots are trusted.
    let client = Valkey::builder()
        .url(&target.url)?
        .tls(TlsConfig::new().ca_cert_pem(target.ca_pem.clone()))
        .build()
        .await?;
    client.set("example:tls", "encrypted").await?;
    let value: Option<String> = client.get("example:tls").await?;
    println!("over TLS: GET example:tls -> {value:?}");
    check(
        value.as_deref() == Some("encrypted"),
        "a round trip over TLS",
    )?;

    // The same settings as a `ConnectionConfig`, for a `Connection` or a
    // cluster client.
    let config = ConnectionConfig::from_url(&target.url)?
        .tls(TlsConfig::new().ca_cert_pem(target.ca_pem.clone()));
    let mut conn = valkey_client::Connection::connect(&config).await?;
    let pong = conn.request(&valkey_client::Cmd::new("PING")).await?;
    check(
        pong.as_str() == Some("PONG"),
        "a dedicated connection over TLS",
    )?;

    // A certificate signed by a CA that is not trusted is refused with a
    // Tls error (not a Connection error, so `Retry::new` does not retry
    // it). Shown with the test kit's second CA, when the server was started
    // here.
    if let Some((_, terminator)) = &target.processes {
        let err = Valkey::builder()
            .url(&target.url)?
            .tls(TlsConfig::new().ca_cert_pem(terminator.other_ca_cert_pem()))
            .build()
            .await
            .expect_err("a certificate the CA did not sign");
        println!("trusting another CA -> {err}");
        check(
            err.kind() == ErrorKind::Tls,
            "an unverified certificate is refused",
        )?;
    }

    println!("tls: all checks passed");
    Ok(())
}
