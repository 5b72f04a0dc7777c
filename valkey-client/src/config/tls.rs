//! [`TlsConfig`]: how to verify the server and, optionally, who we are.

use std::sync::{Arc, OnceLock};

use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::{Error, ErrorKind, Result};

/// TLS settings. The server certificate is always verified: against the
/// Mozilla roots (`webpki-roots`) by default, or only against the CAs given
/// with [`TlsConfig::ca_cert_pem`].
///
/// ```
/// use valkey_client::{ConnectionConfig, TlsConfig};
/// let tls = TlsConfig::new().server_name("cache.internal");
/// let config = ConnectionConfig::tcp("10.1.2.3", 6380).tls(tls);
/// assert!(config.tls_config().is_some());
/// ```
#[derive(Clone, Default)]
pub struct TlsConfig {
    ca_pems: Vec<Vec<u8>>,
    client_identity: Option<(Vec<u8>, Vec<u8>)>,
    server_name: Option<String>,
    /// The rustls configuration, built once on first use and shared by every
    /// connection made from clones of this config.
    built: Arc<OnceLock<Arc<rustls::ClientConfig>>>,
}

impl TlsConfig {
    /// TLS verified against the Mozilla root certificates.
    pub fn new() -> TlsConfig {
        TlsConfig::default()
    }

    /// Trusts the CA certificates in this PEM text, and only those.
    pub fn ca_cert_pem(mut self, pem: impl Into<Vec<u8>>) -> TlsConfig {
        self.ca_pems.push(pem.into());
        self.built = Arc::default();
        self
    }

    /// Presents a client certificate: its chain and its private key, in PEM.
    pub fn client_cert_pem(
        mut self,
        cert_chain: impl Into<Vec<u8>>,
        key: impl Into<Vec<u8>>,
    ) -> TlsConfig {
        self.client_identity = Some((cert_chain.into(), key.into()));
        self.built = Arc::default();
        self
    }

    /// The name to verify the certificate against and to send as SNI, when it
    /// differs from the host connected to.
    pub fn server_name(mut self, name: impl Into<String>) -> TlsConfig {
        self.server_name = Some(name.into());
        self
    }

    /// The name override, if any.
    pub fn server_name_override(&self) -> Option<&str> {
        self.server_name.as_deref()
    }

    /// The rustls client configuration, built on first use.
    pub(crate) fn rustls_config(&self) -> Result<Arc<rustls::ClientConfig>> {
        if let Some(built) = self.built.get() {
            return Ok(built.clone());
        }
        let built = Arc::new(self.build()?);
        Ok(self.built.get_or_init(|| built).clone())
    }

    fn build(&self) -> Result<rustls::ClientConfig> {
        let mut roots = RootCertStore::empty();
        if self.ca_pems.is_empty() {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        for pem in &self.ca_pems {
            for cert in certs(pem, "CA certificate")? {
                roots
                    .add(cert)
                    .map_err(|e| tls_error("CA certificate rejected", e))?;
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_error("no usable TLS versions", e))?
            .with_root_certificates(roots);
        match &self.client_identity {
            None => Ok(builder.with_no_client_auth()),
            Some((chain, key)) => {
                let chain = certs(chain, "client certificate")?;
                let key = PrivateKeyDer::from_pem_slice(key)
                    .map_err(|e| tls_error("client key is not a PEM private key", e))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| tls_error("client certificate rejected", e))
            }
        }
    }
}

fn certs(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| tls_error(&format!("{what} is not valid PEM"), e))?;
    if certs.is_empty() {
        return Err(Error::new(
            ErrorKind::Tls,
            format!("{what}: no certificate found in the PEM text"),
        ));
    }
    Ok(certs)
}

fn tls_error(what: &str, e: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::new(ErrorKind::Tls, what.to_string()).with_source(e)
}

impl std::fmt::Debug for TlsConfig {
    // Certificates are long and the client key is secret: show only what is set.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConfig")
            .field("custom_ca_certs", &self.ca_pems.len())
            .field("client_cert", &self.client_identity.is_some())
            .field("server_name", &self.server_name)
            .finish()
    }
}
