//! A throw-away certificate authority and the certificates a test registry and its token
//! endpoint need, made with `rcgen` (ECDSA P-256, valid for a day).

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair, KeyUsagePurpose,
    SanType,
};

use crate::Error;

/// PEM files of a test CA and a server certificate it signed for `127.0.0.1` and `localhost`.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The CA's certificate: what a client trusts (`ctrd images pull --tlscacert`).
    pub ca_cert: PathBuf,
    /// The server's certificate.
    pub server_cert: PathBuf,
    /// The server's private key.
    pub server_key: PathBuf,
}

fn params(common_name: &str) -> Result<CertificateParams, Error> {
    let mut params = CertificateParams::new(Vec::<String>::new())
        .map_err(|e| Error::setup("certificate parameters", e))?;
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, common_name);
    params.distinguished_name = name;
    let now = std::time::SystemTime::now();
    params.not_before = (now - std::time::Duration::from_secs(3600)).into();
    params.not_after = (now + std::time::Duration::from_secs(24 * 3600)).into();
    Ok(params)
}

fn write(path: &Path, text: &str) -> Result<(), Error> {
    std::fs::write(path, text).map_err(|e| Error::io(path, e))
}

/// Makes a CA and a server certificate for 127.0.0.1 in `dir` (`ca.crt`, `server.crt`,
/// `server.key`).
pub fn make_server_certs(dir: &Path) -> Result<TlsFiles, Error> {
    let ca_key = KeyPair::generate().map_err(|e| Error::setup("CA key", e))?;
    let mut ca_params = params("ctrd test CA")?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = ca_params
        .self_signed(&ca_key)
        .map_err(|e| Error::setup("CA certificate", e))?;

    let server_key = KeyPair::generate().map_err(|e| Error::setup("server key", e))?;
    let mut server_params = params("127.0.0.1")?;
    server_params.subject_alt_names = vec![
        SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()),
        SanType::DnsName(
            "localhost"
                .to_owned()
                .try_into()
                .map_err(|e| Error::setup("server name", e))?,
        ),
    ];
    let server = server_params
        .signed_by(&server_key, &ca, &ca_key)
        .map_err(|e| Error::setup("server certificate", e))?;

    let files = TlsFiles {
        ca_cert: dir.join("ca.crt"),
        server_cert: dir.join("server.crt"),
        server_key: dir.join("server.key"),
    };
    write(&files.ca_cert, &ca.pem())?;
    write(&files.server_cert, &server.pem())?;
    write(&files.server_key, &server_key.serialize_pem())?;
    Ok(files)
}

/// A self-signed signing certificate and its key (PKCS#8 DER), for registry tokens: the
/// registry trusts the certificate, the token endpoint signs with the key and names the
/// certificate in each token's `x5c` header.
#[derive(Debug)]
pub struct SigningKey {
    /// The certificate's DER.
    pub cert_der: Vec<u8>,
    /// The certificate as PEM (the registry's `rootcertbundle`).
    pub cert_pem: String,
    /// The private key as PKCS#8 DER.
    pub key_der: Vec<u8>,
}

/// Makes a token-signing key and its self-signed certificate.
pub fn make_signing_key() -> Result<SigningKey, Error> {
    let key = KeyPair::generate().map_err(|e| Error::setup("token signing key", e))?;
    let mut params = params("ctrd test token issuer")?;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let cert = params
        .self_signed(&key)
        .map_err(|e| Error::setup("token signing certificate", e))?;
    Ok(SigningKey {
        cert_der: cert.der().to_vec(),
        cert_pem: cert.pem(),
        key_der: key.serialize_der(),
    })
}
