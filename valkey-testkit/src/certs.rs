//! Test certificates generated with rcgen: a CA, a server certificate and a client
//! certificate signed by it.

use std::io;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// A certificate and its private key, both PEM.
#[derive(Debug, Clone)]
pub struct PemPair {
    /// The certificate, PEM.
    pub cert: String,
    /// The private key (PKCS#8), PEM.
    pub key: String,
}

/// A freshly generated certificate authority with a server and a client certificate.
#[derive(Debug, Clone)]
pub struct TestCerts {
    /// The CA certificate and key.
    pub ca: PemPair,
    /// A server certificate for `localhost` and `127.0.0.1`, signed by the CA.
    pub server: PemPair,
    /// A client certificate (CN `valkey-testkit client`), signed by the CA.
    pub client: PemPair,
    /// The certificate of another, unrelated CA: trusting only it must make
    /// verification of the server fail.
    pub other_ca: PemPair,
}

fn to_io(e: rcgen::Error) -> io::Error {
    io::Error::other(format!("generating test certificates: {e}"))
}

fn ca_params(name: &str) -> io::Result<CertificateParams> {
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(to_io)?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ok(params)
}

fn self_signed_ca(name: &str) -> io::Result<(PemPair, Issuer<'static, KeyPair>)> {
    let key = KeyPair::generate().map_err(to_io)?;
    let params = ca_params(name)?;
    let cert = params.self_signed(&key).map_err(to_io)?;
    let pair = PemPair {
        cert: cert.pem(),
        key: key.serialize_pem(),
    };
    Ok((pair, Issuer::new(params, key)))
}

fn leaf(
    issuer: &Issuer<'_, KeyPair>,
    sans: &[&str],
    common_name: &str,
    usage: ExtendedKeyUsagePurpose,
) -> io::Result<PemPair> {
    let key = KeyPair::generate().map_err(to_io)?;
    let sans: Vec<String> = sans.iter().map(|s| (*s).to_owned()).collect();
    let mut params = CertificateParams::new(sans).map_err(to_io)?;
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![usage];
    let cert = params.signed_by(&key, issuer).map_err(to_io)?;
    Ok(PemPair {
        cert: cert.pem(),
        key: key.serialize_pem(),
    })
}

impl TestCerts {
    /// Generates a new CA, server certificate, client certificate and unrelated CA.
    pub fn generate() -> io::Result<TestCerts> {
        let (ca, issuer) = self_signed_ca("valkey-testkit CA")?;
        let server = leaf(
            &issuer,
            &["localhost", "127.0.0.1"],
            "localhost",
            ExtendedKeyUsagePurpose::ServerAuth,
        )?;
        let client = leaf(
            &issuer,
            &["valkey-testkit-client"],
            "valkey-testkit client",
            ExtendedKeyUsagePurpose::ClientAuth,
        )?;
        let (other_ca, _) = self_signed_ca("valkey-testkit unrelated CA")?;
        Ok(TestCerts {
            ca,
            server,
            client,
            other_ca,
        })
    }
}
