//! The TLS terminator, checked with `openssl s_client` when it is installed.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use valkey_testkit::{Server, ServerConfig, TlsOptions, TlsTerminator};

/// Sends PING and QUIT through `openssl s_client`; returns (exit success, stdout).
fn s_client(port: u16, ca: &Path, client: Option<(&Path, &Path)>) -> Option<(bool, String)> {
    let mut cmd = Command::new("openssl");
    cmd.args([
        "s_client",
        "-quiet",
        "-verify_return_error",
        "-servername",
        "localhost",
    ])
    .arg("-connect")
    .arg(format!("127.0.0.1:{port}"))
    .arg("-CAfile")
    .arg(ca);
    if let Some((cert, key)) = client {
        cmd.arg("-cert").arg(cert).arg("-key").arg(key);
    }
    let mut child = match cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(child) => child,
        Err(_) => {
            eprintln!("openssl not installed: skipping the TLS handshake checks");
            return None;
        }
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"PING\r\nQUIT\r\n")
        .unwrap();
    let output = child.wait_with_output().unwrap();
    Some((
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminator_forwards_tls_to_the_server() {
    let server = Server::start(ServerConfig::new()).await.unwrap();
    let mut tls = TlsTerminator::start(server.port(), TlsOptions::default())
        .await
        .unwrap();
    assert_ne!(tls.port(), server.port());
    assert!(tls.ca_cert_pem().starts_with("-----BEGIN CERTIFICATE-----"));
    assert_ne!(tls.ca_cert_pem(), tls.other_ca_cert_pem());
    assert!(tls.ca_cert_path().is_file());
    tokio::net::TcpStream::connect(("127.0.0.1", tls.port()))
        .await
        .unwrap();

    if let Some((ok, out)) = s_client(tls.port(), &tls.ca_cert_path(), None) {
        assert!(
            ok && out.contains("+PONG"),
            "TLS round trip failed: {out}\n{}",
            tls.log_tail(20)
        );
        let (ok, out) = s_client(tls.port(), &tls.other_ca_cert_path(), None).unwrap();
        assert!(
            !ok && !out.contains("+PONG"),
            "verification with an unrelated CA passed"
        );
    }
    let pid = tls.pid().unwrap();
    tls.kill();
    assert!(!Path::new(&format!("/proc/{pid}")).exists());
    assert!(
        tokio::net::TcpStream::connect(("127.0.0.1", tls.port()))
            .await
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminator_requires_client_certificates() {
    let server = Server::start(ServerConfig::new()).await.unwrap();
    let tls = TlsTerminator::start(
        server.port(),
        TlsOptions {
            require_client_cert: true,
        },
    )
    .await
    .unwrap();
    let pid = tls.pid().unwrap();
    if let Some((ok, out)) = s_client(tls.port(), &tls.ca_cert_path(), None) {
        assert!(
            !(ok && out.contains("+PONG")),
            "no client certificate, yet: {out}"
        );
        let client = (tls.client_cert_path(), tls.client_key_path());
        let (ok, out) = s_client(
            tls.port(),
            &tls.ca_cert_path(),
            Some((&client.0, &client.1)),
        )
        .unwrap();
        assert!(
            ok && out.contains("+PONG"),
            "with a client certificate: {out}\n{}",
            tls.log_tail(20)
        );
    }
    drop(tls);
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "stunnel survived drop"
    );
}
