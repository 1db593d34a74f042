//! Pulls from a registry that wants a client certificate (mutual TLS: docker-registry's
//! `http.tls.clientcas`): no certificate, or one from another CA, is one error line naming the
//! client certificate and leaves nothing behind; the right one pulls, with the registry's CA
//! or with verification skipped. The transfer service of 2.x has no TLS options, so such a
//! pull goes through this client (and `Route::Transfer` is refused). On every selected
//! containerd.

mod common;

use std::path::Path;
use std::time::Duration;

use ctrd_client::{ImportOptions, PullOptions, Route};
use ctrd_testbed::{Daemon, ImageArchive, Registry, RegistryOptions, TlsFiles};

async fn scenario(daemon: Daemon, reference: &str, registry: &Registry, wrong: &TlsFiles) {
    eprintln!("containerd {}: client certificates", daemon.version());
    let namespace = format!("client-mtls-{}", daemon.version().replace('.', "-"));
    let bed = common::Bed::start(daemon, &namespace).await;
    let ca = registry.ca_file().expect("CA file");
    let (cert, key) = registry.client_cert().expect("client certificate");
    let unpack = || PullOptions::from(ImportOptions::default().unpack("overlayfs"));

    common::refused(
        &bed,
        reference,
        unpack().ca_file(&ca),
        &["client certificate"],
    )
    .await;
    common::refused(
        &bed,
        reference,
        unpack()
            .ca_file(&ca)
            .client_identity(&wrong.client_cert, &wrong.client_key),
        &["client certificate"],
    )
    .await;
    common::refused(
        &bed,
        reference,
        unpack()
            .ca_file(&ca)
            .client_identity(&cert, Path::new("/nonexistent/client.key")),
        &["client key", "/nonexistent/client.key"],
    )
    .await;
    let through_transfer = PullOptions::from(
        ImportOptions::default()
            .unpack("overlayfs")
            .route(Route::Transfer),
    )
    .client_identity(&cert, &key);
    common::refused(&bed, reference, through_transfer, &["transfer service"]).await;

    for options in [
        unpack().ca_file(&ca).client_identity(&cert, &key),
        unpack().skip_verify().client_identity(&cert, &key),
    ] {
        let image = bed
            .client
            .pull(reference, options)
            .await
            .unwrap_or_else(|e| panic!("pull {reference}: {e}"));
        assert_eq!(image.name, reference);
        bed.client
            .remove_image(reference)
            .await
            .expect("remove image");
        bed.assert_empty().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_shows_a_client_certificate_when_the_registry_wants_one() {
    let archive = ImageArchive::busybox("docker.io/library/ctrd-mtls:latest").expect("archive");
    let registry = Registry::start_with(RegistryOptions {
        tls: true,
        client_certs: true,
        ..RegistryOptions::default()
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let reference = registry
        .push(&archive.path(), "ctrd/busybox", "v1")
        .unwrap_or_else(|e| panic!("{e}"));
    // Certificates from another CA: a client certificate the registry does not accept.
    let other = tempfile::tempdir().expect("temporary folder");
    let wrong = ctrd_testbed::make_tls_files(other.path()).unwrap_or_else(|e| panic!("{e}"));
    for daemon in common::daemons() {
        tokio::time::timeout(
            Duration::from_secs(180),
            scenario(daemon, &reference, &registry, &wrong),
        )
        .await
        .unwrap_or_else(|_| panic!("containerd {} took over 180 s", daemon.version()));
    }
}
