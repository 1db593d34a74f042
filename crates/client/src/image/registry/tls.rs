//! The TLS set-up of registry connections: the system's trusted roots plus a CA file (or no
//! verification at all, when asked), and a client certificate for registries that want one,
//! with rustls on the `ring` provider.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rustls::client::ResolvesClientCert;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

use super::super::pull::PullOptions;
use crate::Error;

/// A client configuration for `options`: trusting the system's roots (unless plain HTTP was
/// asked for) and every certificate in its CA file, or anything under `skip_verify`; showing
/// its client certificate when it names one. The flag returned turns true once a server asks
/// for a client certificate: in TLS 1.3 a server refuses one only after the handshake, and
/// its alert may be lost in a connection that closes under a request.
pub(crate) fn client_config(
    reference: &str,
    options: &PullOptions,
) -> Result<(rustls::ClientConfig, Arc<AtomicBool>), Error> {
    let bad = |reason: String| Error::Registry {
        reference: reference.to_owned(),
        reason,
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(format!("TLS set-up: {e}")))?;
    let builder = if options.skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyServer {
                algorithms: provider.signature_verification_algorithms,
            }))
    } else {
        builder.with_root_certificates(roots(
            options.ca_file.as_deref(),
            !options.plain_http,
            &bad,
        )?)
    };
    let identity = match (&options.client_cert, &options.client_key) {
        (None, None) => None,
        (Some(cert), Some(key)) => {
            let chain = certificates(cert, "client certificate", &bad)?;
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| bad(format!("client key {}: {e}", key.display())))?;
            let signer = provider
                .key_provider
                .load_private_key(key)
                .map_err(|e| bad(format!("client certificate {}: {e}", cert.display())))?;
            Some(Arc::new(CertifiedKey::new(chain, signer)))
        }
        (Some(_), None) => return Err(bad("a client certificate needs its key (--tlskey)".into())),
        (None, Some(_)) => {
            return Err(bad("a client key needs its certificate (--tlscert)".into()));
        }
    };
    let asked = Arc::new(AtomicBool::new(false));
    let config = builder.with_client_cert_resolver(Arc::new(Identity {
        key: identity,
        asked: Arc::clone(&asked),
    }));
    Ok((config, asked))
}

/// The client certificate (if any) shown to a server that asks for one, noting that it asked.
#[derive(Debug)]
struct Identity {
    key: Option<Arc<CertifiedKey>>,
    asked: Arc<AtomicBool>,
}

impl ResolvesClientCert for Identity {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        self.asked.store(true, Ordering::SeqCst);
        self.key.clone()
    }

    fn has_certs(&self) -> bool {
        self.key.is_some()
    }
}

/// The system's roots (when `system_roots`) and the certificates in `ca_file`.
fn roots(
    ca_file: Option<&Path>,
    system_roots: bool,
    bad: &dyn Fn(String) -> Error,
) -> Result<RootCertStore, Error> {
    let mut roots = RootCertStore::empty();
    if system_roots {
        // Unreadable system certificates only narrow what is trusted.
        let found = rustls_native_certs::load_native_certs();
        roots.add_parsable_certificates(found.certs);
    }
    if let Some(path) = ca_file {
        for cert in certificates(path, "CA file", bad)? {
            roots
                .add(cert)
                .map_err(|e| bad(format!("CA file {}: {e}", path.display())))?;
        }
    }
    Ok(roots)
}

/// Every PEM certificate in `path` (at least one).
fn certificates(
    path: &Path,
    what: &str,
    bad: &dyn Fn(String) -> Error,
) -> Result<Vec<CertificateDer<'static>>, Error> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| bad(format!("{what} {}: {e}", path.display())))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(format!("{what} {}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(bad(format!(
            "{what} {}: no PEM certificate in it",
            path.display()
        )));
    }
    Ok(certs)
}

/// Accepts any server certificate (`--skip-verify`), while still checking that the server
/// holds the key of the certificate it showed.
#[derive(Debug)]
struct AnyServer {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AnyServer {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
