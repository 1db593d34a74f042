//! Pulls from real registries (Debian's docker-registry on 127.0.0.1) over HTTPS with a CA
//! the test bed made, behind basic auth (htpasswd, bcrypt) and behind the bearer-token flow
//! (a token endpoint the test bed serves); refusals (no CA, no or wrong credentials, 401,
//! 500) are one error line each and leave no content, lease or image behind. On every
//! selected containerd.

mod common;

use std::time::Duration;

use ctrd_client::{Credentials, ImportOptions, PullOptions, Route};
use ctrd_testbed::{Daemon, ImageArchive, Registry, RegistryAuth, RegistryOptions, StatusServer};

/// Pulls and unpacks `reference`, checks its size, removes it and finds nothing left.
async fn pulled(bed: &common::Bed, reference: &str, options: PullOptions) {
    eprintln!("  {reference}: pulling");
    let image = bed
        .client
        .pull(reference, options)
        .await
        .unwrap_or_else(|e| panic!("pull {reference}: {e}"));
    assert_eq!(image.name, reference);
    let size = bed.client.image_size(reference).await.expect("size");
    assert!(size > 1_000_000, "{size}");
    bed.client
        .remove_image(reference)
        .await
        .expect("remove image");
    bed.assert_empty().await;
}

struct Registries {
    basic: Registry,
    basic_ref: String,
    token: Registry,
    token_ref: String,
    failing: StatusServer,
}

async fn scenario(daemon: Daemon, r: &Registries) {
    eprintln!("containerd {}: HTTPS and auth", daemon.version());
    let namespace = format!("client-auth-{}", daemon.version().replace('.', "-"));
    let bed = common::Bed::start(daemon, &namespace).await;
    let unpack = || PullOptions::from(ImportOptions::default().unpack("overlayfs"));
    let ca = r.basic.ca_file().expect("CA file");
    let good = Credentials::new(Registry::USER, Registry::PASSWORD);
    let bad = Credentials::new(Registry::USER, "wrong");

    // HTTPS without our CA: this client does not trust the certificate. (containerd's
    // transfer service, which 2.x pulls take by default without a CA file, skips
    // verification for localhost: its rule, not ours.)
    let local = || PullOptions::from(ImportOptions::default().route(Route::Local));
    common::refused(&bed, &r.basic_ref, local(), &["certificate"]).await;
    // Basic auth: none, wrong, right.
    common::refused(
        &bed,
        &r.basic_ref,
        unpack().ca_file(&ca),
        &["basic auth", "--user"],
    )
    .await;
    common::refused(
        &bed,
        &r.basic_ref,
        unpack().ca_file(&ca).credentials(bad.clone()),
        &["401", "refused these credentials"],
    )
    .await;
    pulled(
        &bed,
        &r.basic_ref,
        unpack().ca_file(&ca).credentials(good.clone()),
    )
    .await;

    // Bearer tokens: anonymous pulls are granted, wrong credentials refused by the endpoint.
    let ca = r.token.ca_file().expect("CA file");
    let issued = r.token.token_server().expect("token endpoint").issued();
    pulled(&bed, &r.token_ref, unpack().ca_file(&ca)).await;
    common::refused(
        &bed,
        &r.token_ref,
        unpack().ca_file(&ca).credentials(bad),
        &["token from", "401", "refused these credentials"],
    )
    .await;
    pulled(&bed, &r.token_ref, unpack().ca_file(&ca).credentials(good)).await;
    assert!(r.token.token_server().expect("endpoint").issued() >= issued + 2);

    // A registry failing every request.
    let failing = format!("{}/ctrd/busybox:v1", r.failing.host());
    common::refused(
        &bed,
        &failing,
        local().plain_http(),
        &["500", "storage is on fire"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_over_https_with_basic_and_token_auth() {
    let archive = ImageArchive::busybox("docker.io/library/ctrd-auth:latest").expect("archive");
    let start = |auth| {
        Registry::start_with(RegistryOptions {
            tls: true,
            auth,
            ..RegistryOptions::default()
        })
        .unwrap_or_else(|e| panic!("{e}"))
    };
    let basic = start(RegistryAuth::Basic);
    let token = start(RegistryAuth::Token);
    let push = |registry: &Registry| {
        registry
            .push(&archive.path(), "ctrd/busybox", "v1")
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let registries = Registries {
        basic_ref: push(&basic),
        token_ref: push(&token),
        basic,
        token,
        failing: StatusServer::start(500, "storage is on fire").unwrap_or_else(|e| panic!("{e}")),
    };
    for daemon in common::daemons() {
        tokio::time::timeout(Duration::from_secs(180), scenario(daemon, &registries))
            .await
            .unwrap_or_else(|_| panic!("containerd {} took over 180 s", daemon.version()));
    }
}
