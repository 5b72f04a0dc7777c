//! [`TlsConfig`]: how to verify the server and, optionally, who we are.

use std::sync::{Arc, OnceLock};

use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::tls_provider::crypto_provider;
use crate::error::{Error, ErrorKind, Result};

/// TLS settings. The server certificate is always verified.
///
/// # Which certificates are trusted
///
/// - By default, the Mozilla root certificates (`webpki-roots`), compiled
///   in: the same on every machine, whatever its certificate store holds.
/// - With [`ca_cert_pem`](TlsConfig::ca_cert_pem): only the CAs given (a
///   private CA, as most Valkey deployments use).
/// - With `platform_roots` (cargo feature `platform-certs`): the operating system's certificate store, read once
///   when the first connection is made (on Linux the distribution's bundle,
///   or the files named by `SSL_CERT_FILE` / `SSL_CERT_DIR` when set), plus
///   any CAs given with `ca_cert_pem`.
///
/// [`client_cert_pem`](TlsConfig::client_cert_pem) adds a client
/// certificate for servers that ask for one (`tls-auth-clients yes`), and
/// [`server_name`](TlsConfig::server_name) verifies the certificate against
/// (and sends as SNI) another name than the host connected to, e.g. when
/// connecting by IP address to a server whose certificate names its host.
///
/// ```
/// use valkey_client::{ConnectionConfig, TlsConfig};
/// let tls = TlsConfig::new().server_name("cache.internal");
/// let config = ConnectionConfig::tcp("10.1.2.3", 6380).tls(tls);
/// assert!(config.tls_config().is_some());
/// ```
///
/// # Your own rustls configuration
///
/// For anything else (a custom certificate verifier, ALPN, session
/// resumption settings, a client key held elsewhere, a pinned crypto
/// provider) build a `rustls::ClientConfig` (rustls 0.23) yourself and hand
/// it in with [`TlsConfig::from_rustls`]. It is used as given; only the
/// name to verify comes from the connection (the host, or
/// [`server_name`](TlsConfig::server_name) when set).
///
/// # Crypto provider
///
/// The configurations built here take rustls' crypto from, in this order:
///
/// 1. the process default, when the application installed one
///    (`rustls::crypto::CryptoProvider::install_default`);
/// 2. aws-lc-rs, when the cargo feature `aws-lc-rs` is on (it wins over
///    `ring` when both are on: turning on the non-default one says it is
///    wanted);
/// 3. ring, when the cargo feature `ring` is on (the default).
///
/// With neither feature and no process default, connecting fails with an
/// [`ErrorKind::Tls`] error that says so, before any network traffic. A
/// configuration given with [`from_rustls`](TlsConfig::from_rustls) carries
/// its own provider.
#[derive(Clone, Default)]
pub struct TlsConfig {
    ca_pems: Vec<Vec<u8>>,
    /// Trust the operating system's certificate store.
    #[cfg(feature = "platform-certs")]
    platform_roots: bool,
    client_identity: Option<(Vec<u8>, Vec<u8>)>,
    server_name: Option<String>,
    /// A configuration the user built with rustls, used as given.
    user_config: Option<Arc<rustls::ClientConfig>>,
    /// The rustls configuration, built once on first use and shared by every
    /// connection made from clones of this config.
    built: Arc<OnceLock<Arc<rustls::ClientConfig>>>,
}

impl TlsConfig {
    /// TLS verified against the Mozilla root certificates.
    pub fn new() -> TlsConfig {
        TlsConfig::default()
    }

    /// TLS with a rustls client configuration of your own, used as given:
    /// its certificate verifier, client authentication, ALPN and crypto
    /// provider. [`server_name`](TlsConfig::server_name) still applies;
    /// the certificate settings of this type
    /// ([`ca_cert_pem`](TlsConfig::ca_cert_pem),
    /// [`client_cert_pem`](TlsConfig::client_cert_pem), `platform_roots`)
    /// belong in the rustls configuration instead, and setting one of them
    /// as well makes connecting fail with an [`ErrorKind::Tls`] error.
    ///
    /// ```
    /// # #[cfg(feature = "ring")] {
    /// use std::sync::Arc;
    /// use valkey_client::{ConnectionConfig, TlsConfig};
    ///
    /// let provider = Arc::new(rustls::crypto::ring::default_provider());
    /// let mut roots = rustls::RootCertStore::empty();
    /// roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    /// let rustls_config = rustls::ClientConfig::builder_with_provider(provider)
    ///     .with_safe_default_protocol_versions()
    ///     .unwrap()
    ///     .with_root_certificates(roots)
    ///     .with_no_client_auth();
    /// let tls = TlsConfig::from_rustls(rustls_config).server_name("cache.example.com");
    /// let config = ConnectionConfig::tcp("10.1.2.3", 6380).tls(tls);
    /// # }
    /// ```
    pub fn from_rustls(config: impl Into<Arc<rustls::ClientConfig>>) -> TlsConfig {
        TlsConfig {
            user_config: Some(config.into()),
            ..TlsConfig::default()
        }
    }

    /// Trusts the CA certificates in this PEM text, and only those (with
    /// `platform_roots`: those and the platform's).
    pub fn ca_cert_pem(mut self, pem: impl Into<Vec<u8>>) -> TlsConfig {
        self.ca_pems.push(pem.into());
        self.built = Arc::default();
        self
    }

    /// Trusts the operating system's certificate store instead of the
    /// compiled-in Mozilla roots, plus any CAs given with
    /// [`ca_cert_pem`](TlsConfig::ca_cert_pem). The store is read (with
    /// `rustls-native-certs`) when the first connection is made; a store
    /// that cannot be read or holds no usable certificate makes connecting
    /// fail with an [`ErrorKind::Tls`] error. On Linux and other Unix
    /// systems the environment variables `SSL_CERT_FILE` and
    /// `SSL_CERT_DIR`, when set, name the certificates to use instead.
    #[cfg(feature = "platform-certs")]
    pub fn platform_roots(mut self) -> TlsConfig {
        self.platform_roots = true;
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
        let built = match &self.user_config {
            Some(user) => {
                self.check_nothing_beside_user_config()?;
                user.clone()
            }
            None => Arc::new(self.build()?),
        };
        Ok(self.built.get_or_init(|| built).clone())
    }

    /// A rustls configuration of the user's own already says which roots
    /// to trust and who we are: settings here would be ignored.
    fn check_nothing_beside_user_config(&self) -> Result<()> {
        let mut set = Vec::new();
        if !self.ca_pems.is_empty() {
            set.push("ca_cert_pem");
        }
        if self.client_identity.is_some() {
            set.push("client_cert_pem");
        }
        #[cfg(feature = "platform-certs")]
        if self.platform_roots {
            set.push("platform_roots");
        }
        if set.is_empty() {
            return Ok(());
        }
        Err(Error::new(
            ErrorKind::Tls,
            format!(
                "a TlsConfig made from a rustls ClientConfig takes its certificates from that \
                 configuration; {} would be ignored: configure them in the rustls ClientConfig",
                set.join(" and ")
            ),
        ))
    }

    /// The roots trusted before any CA given with `ca_cert_pem`.
    fn base_roots(&self) -> Result<RootCertStore> {
        #[cfg(feature = "platform-certs")]
        if self.platform_roots {
            return platform_roots();
        }
        let mut roots = RootCertStore::empty();
        if self.ca_pems.is_empty() {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        Ok(roots)
    }

    fn build(&self) -> Result<rustls::ClientConfig> {
        let mut roots = self.base_roots()?;
        for pem in &self.ca_pems {
            for cert in certs(pem, "CA certificate")? {
                roots
                    .add(cert)
                    .map_err(|e| tls_error("CA certificate rejected", e))?;
            }
        }
        let builder = rustls::ClientConfig::builder_with_provider(crypto_provider()?)
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

/// The operating system's trusted certificates. Stores commonly hold a few
/// certificates rustls cannot use (old formats, odd encodings): those are
/// skipped, and only a store with nothing usable is an error.
#[cfg(feature = "platform-certs")]
fn platform_roots() -> Result<RootCertStore> {
    let found = rustls_native_certs::load_native_certs();
    for error in &found.errors {
        tracing::debug!(%error, "skipping part of the platform certificate store");
    }
    let mut roots = RootCertStore::empty();
    let (added, _unusable) = roots.add_parsable_certificates(found.certs);
    if added > 0 {
        return Ok(roots);
    }
    let mut err = Error::new(
        ErrorKind::Tls,
        "the platform certificate store holds no usable certificate",
    );
    if let Some(first) = found.errors.into_iter().next() {
        err = err.with_source(first);
    }
    Err(err)
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
        let mut f = f.debug_struct("TlsConfig");
        f.field("custom_ca_certs", &self.ca_pems.len());
        #[cfg(feature = "platform-certs")]
        f.field("platform_roots", &self.platform_roots);
        f.field("client_cert", &self.client_identity.is_some())
            .field("server_name", &self.server_name)
            .field("rustls_config", &self.user_config.is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(any(feature = "ring", feature = "aws-lc-rs"))]
    #[test]
    fn settings_beside_a_rustls_config_are_refused_not_ignored() {
        let user = TlsConfig::new().rustls_config().unwrap();
        assert!(TlsConfig::from_rustls(user.clone()).rustls_config().is_ok());
        let err = TlsConfig::from_rustls(user.clone())
            .ca_cert_pem("pem")
            .client_cert_pem("chain", "key")
            .rustls_config()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Tls);
        assert!(
            err.to_string().contains("ca_cert_pem and client_cert_pem"),
            "{err}"
        );
        // The server name is the connection's business and stays allowed.
        let named = TlsConfig::from_rustls(user.clone()).server_name("cache.internal");
        assert!(Arc::ptr_eq(&named.rustls_config().unwrap(), &user));
        assert_eq!(named.server_name_override(), Some("cache.internal"));
    }

    #[test]
    fn debug_shows_what_is_set_and_no_key() {
        let tls = TlsConfig::new().client_cert_pem("chain", "secret-key-text");
        let debug = format!("{tls:?}");
        assert!(debug.contains("client_cert: true"), "{debug}");
        assert!(!debug.contains("secret-key-text"), "{debug}");
    }
}
