//! A throw-away certificate authority and the certificates a test registry, its clients and
//! its token endpoint need, made with `rcgen` (ECDSA P-256, valid for a day).

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};

use crate::Error;

/// PEM files of a test CA, a server certificate it signed for `127.0.0.1` and `localhost`, and
/// a client certificate it signed (for registries that want one).
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The CA's certificate: what a client trusts (`ctrd images pull --tlscacert`).
    pub ca_cert: PathBuf,
    /// The server's certificate.
    pub server_cert: PathBuf,
    /// The server's private key.
    pub server_key: PathBuf,
    /// A client certificate the CA signed (`ctrd images pull --tlscert`).
    pub client_cert: PathBuf,
    /// Its private key (`--tlskey`).
    pub client_key: PathBuf,
}

impl TlsFiles {
    /// A folder beside the files holding the client certificate as `skopeo` wants it
    /// (`client.cert`, `client.key`); made on first use.
    pub fn skopeo_dir(&self) -> Result<PathBuf, Error> {
        let base = self.client_cert.parent().unwrap_or(Path::new("/tmp"));
        let dir = base.join("skopeo-certs");
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        for (from, to) in [
            (&self.client_cert, "client.cert"),
            (&self.client_key, "client.key"),
        ] {
            let to = dir.join(to);
            std::fs::copy(from, &to).map_err(|e| Error::io(&to, e))?;
        }
        Ok(dir)
    }
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

/// Makes a CA, a server certificate for 127.0.0.1 and a client certificate in `dir` (`ca.crt`,
/// `server.crt`, `server.key`, `client.crt`, `client.key`). Certificates from another call
/// are signed by another CA: a wrong client certificate for a test.
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

    let client_key = KeyPair::generate().map_err(|e| Error::setup("client key", e))?;
    let mut client_params = params("ctrd test client")?;
    client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client = client_params
        .signed_by(&client_key, &ca, &ca_key)
        .map_err(|e| Error::setup("client certificate", e))?;

    let files = TlsFiles {
        ca_cert: dir.join("ca.crt"),
        server_cert: dir.join("server.crt"),
        server_key: dir.join("server.key"),
        client_cert: dir.join("client.crt"),
        client_key: dir.join("client.key"),
    };
    write(&files.ca_cert, &ca.pem())?;
    write(&files.server_cert, &server.pem())?;
    write(&files.server_key, &server_key.serialize_pem())?;
    write(&files.client_cert, &client.pem())?;
    write(&files.client_key, &client_key.serialize_pem())?;
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
