//! Which rustls crypto provider the TLS configurations built by
//! [`TlsConfig`](super::TlsConfig) use: the application's process default
//! first, then the one the cargo features compile in.

use std::sync::Arc;

use rustls::crypto::CryptoProvider;

use crate::error::{Error, ErrorKind, Result};

/// The provider for a configuration built now.
pub(super) fn crypto_provider() -> Result<Arc<CryptoProvider>> {
    choose(CryptoProvider::get_default(), feature_provider)
}

/// The installed process default wins: the application chose it (perhaps
/// a FIPS build, perhaps the only one it links). Otherwise the feature's.
fn choose(
    installed: Option<&Arc<CryptoProvider>>,
    from_features: impl FnOnce() -> Option<CryptoProvider>,
) -> Result<Arc<CryptoProvider>> {
    if let Some(installed) = installed {
        return Ok(installed.clone());
    }
    from_features().map(Arc::new).ok_or_else(|| {
        Error::new(
            ErrorKind::Tls,
            "no crypto provider for TLS: turn on the `ring` or `aws-lc-rs` feature of \
             valkey-client, or install a process default with \
             rustls::crypto::CryptoProvider::install_default",
        )
    })
}

/// aws-lc-rs when its feature is on, even beside `ring`: `ring` is on by
/// default, so turning on `aws-lc-rs` as well says that it is wanted.
#[cfg(feature = "aws-lc-rs")]
fn feature_provider() -> Option<CryptoProvider> {
    Some(rustls::crypto::aws_lc_rs::default_provider())
}

#[cfg(all(feature = "ring", not(feature = "aws-lc-rs")))]
fn feature_provider() -> Option<CryptoProvider> {
    Some(rustls::crypto::ring::default_provider())
}

#[cfg(not(any(feature = "ring", feature = "aws-lc-rs")))]
fn feature_provider() -> Option<CryptoProvider> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(any(feature = "ring", feature = "aws-lc-rs"))]
    #[test]
    fn an_installed_default_wins_over_the_features() {
        // Told apart from the feature's by having no cipher suites.
        let mut bare = feature_provider().unwrap_or_else(|| panic!("a provider feature is on"));
        bare.cipher_suites.clear();
        let installed = Arc::new(bare);
        let chosen = choose(Some(&installed), feature_provider).unwrap();
        assert!(Arc::ptr_eq(&chosen, &installed));
        // Without one, the feature's provider (which has cipher suites).
        let chosen = choose(None, feature_provider).unwrap();
        assert!(!chosen.cipher_suites.is_empty());
    }

    #[test]
    fn no_provider_at_all_is_a_tls_error_naming_the_features() {
        let err = choose(None, || None).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Tls);
        let message = err.to_string();
        for needle in ["`ring`", "`aws-lc-rs`", "install_default"] {
            assert!(message.contains(needle), "{message}");
        }
    }

    /// With both features on, aws-lc-rs is the one used. (Providers have no
    /// name; their random-number source's `Debug` output names the crate.)
    #[cfg(feature = "aws-lc-rs")]
    #[test]
    fn aws_lc_rs_is_chosen_when_its_feature_is_on() {
        let chosen = choose(None, feature_provider).unwrap();
        let debug = format!("{:?}", chosen.secure_random);
        assert!(debug.contains("AwsLcRs"), "{debug}");
    }
}
