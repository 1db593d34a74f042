//! The TLS set-up of registry connections: the system's trusted roots plus a CA file, with
//! rustls on the `ring` provider.

use std::path::Path;
use std::sync::Arc;

use rustls::RootCertStore;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use crate::Error;

/// A client configuration trusting the system's roots (when `system_roots`) and every
/// certificate in `ca_file`.
pub(crate) fn client_config(
    reference: &str,
    ca_file: Option<&Path>,
    system_roots: bool,
) -> Result<rustls::ClientConfig, Error> {
    let bad = |reason: String| Error::Registry {
        reference: reference.to_owned(),
        reason,
    };
    let mut roots = RootCertStore::empty();
    if system_roots {
        // Unreadable system certificates only narrow what is trusted.
        let found = rustls_native_certs::load_native_certs();
        roots.add_parsable_certificates(found.certs);
    }
    if let Some(path) = ca_file {
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| bad(format!("CA file {}: {e}", path.display())))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad(format!("CA file {}: {e}", path.display())))?;
        if certs.is_empty() {
            return Err(bad(format!(
                "CA file {}: no PEM certificate in it",
                path.display()
            )));
        }
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| bad(format!("CA file {}: {e}", path.display())))?;
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| bad(format!("TLS set-up: {e}")))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(config)
}
