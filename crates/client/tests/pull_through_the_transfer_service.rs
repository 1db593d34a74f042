//! Pulls carried out by containerd's transfer service (containerd 2.x), from real registries
//! on 127.0.0.1 over plain HTTP (Debian's docker-registry): open, behind basic auth and behind
//! the bearer-token flow, the credentials answered over the auth stream; progress from the
//! daemon's stream; the image unpacked and run by our shim. A missing image and refused
//! credentials are one error line each and leave nothing behind. On containerd 1.x, which has
//! no transfer service, `Route::Transfer` is refused with a clear error and `Route::Auto` pulls
//! through this client.

mod common;

use std::time::Duration;

use ctrd_client::{Credentials, ImportOptions, NewContainer, Progress, PullOptions, Route, Stdio};
use ctrd_testbed::{Daemon, ImageArchive, Registry, RegistryAuth, RegistryOptions};

struct Registries {
    open: Registry,
    open_ref: String,
    basic_ref: String,
    token: Registry,
    token_ref: String,
    _basic: Registry,
}

fn through_transfer() -> ImportOptions {
    ImportOptions::default()
        .route(Route::Transfer)
        .unpack("overlayfs")
}

/// Pulls, checks the image and its unpacked snapshot, removes it and finds nothing left.
async fn pulled(bed: &common::Bed, reference: &str, options: PullOptions) {
    eprintln!("  {reference}: pulling");
    let image = bed
        .client
        .pull(reference, options)
        .await
        .unwrap_or_else(|e| panic!("pull {reference}: {e}"));
    assert_eq!(image.name, reference);
    assert!(
        !bed.client
            .list_snapshots("overlayfs")
            .await
            .expect("snapshots")
            .is_empty(),
        "the transfer service did not unpack {reference}"
    );
    bed.client
        .remove_image(reference)
        .await
        .expect("remove image");
    bed.assert_empty().await;
}

async fn scenario(daemon: Daemon, r: &Registries) {
    eprintln!(
        "containerd {}: pulls through the transfer service",
        daemon.version()
    );
    let namespace = format!("client-transfer-{}", daemon.version().replace('.', "-"));
    let bed = common::Bed::start(daemon, &namespace).await;
    let client = &bed.client;

    if !daemon.is_v2() {
        let err = client
            .pull(&r.open_ref, through_transfer())
            .await
            .expect_err("1.x has no transfer service");
        assert!(err.to_string().contains("no transfer service"), "{err}");
        bed.assert_empty().await;
        // The default route pulls through this client instead.
        pulled(
            &bed,
            &r.open_ref,
            ImportOptions::default().unpack("overlayfs").into(),
        )
        .await;
        return;
    }

    // An open registry: progress comes from the daemon, the image runs.
    let (sender, mut progress) = tokio::sync::mpsc::unbounded_channel();
    let image = client
        .pull(&r.open_ref, through_transfer().progress(sender))
        .await
        .expect("pull through the transfer service");
    assert_eq!(image.name, r.open_ref);
    let (mut total, mut blobs) = (0, 0);
    while let Ok(p) = progress.try_recv() {
        match p {
            Progress::Total { bytes } => total = total.max(bytes),
            Progress::Blob { .. } => blobs += 1,
            _ => {}
        }
    }
    assert!(
        total > 1_000_000 && blobs > 0,
        "total {total}, blob reports {blobs}"
    );
    client
        .create_container(NewContainer::new("moved", &r.open_ref).args(["sh", "-c", "exit 7"]))
        .await
        .expect("container");
    let (task, _io) = client.new_task("moved", Stdio::Null).await.expect("task");
    task.start().await.expect("start");
    assert_eq!(task.wait().await.expect("wait").code, 7);
    task.delete().await.expect("delete task");
    client
        .delete_container("moved")
        .await
        .expect("delete container");
    client
        .remove_image(&r.open_ref)
        .await
        .expect("remove image");
    bed.assert_empty().await;

    // The default route takes the transfer service on 2.x too.
    pulled(
        &bed,
        &r.open_ref,
        ImportOptions::default().unpack("overlayfs").into(),
    )
    .await;

    // A missing image.
    let missing = format!("{}/ctrd/nope:v1", r.open.host());
    common::refused(&bed, &missing, through_transfer().into(), &["not found"]).await;

    // Basic auth and the token flow: credentials go over the auth stream.
    let good = Credentials::new(Registry::USER, Registry::PASSWORD);
    let bad = Credentials::new(Registry::USER, "wrong");
    common::refused(
        &bed,
        &r.basic_ref,
        PullOptions::from(through_transfer()).credentials(bad.clone()),
        &["transfer service"],
    )
    .await;
    pulled(
        &bed,
        &r.basic_ref,
        PullOptions::from(through_transfer()).credentials(good.clone()),
    )
    .await;
    let issued = r.token.token_server().expect("token endpoint").issued();
    pulled(
        &bed,
        &r.token_ref,
        PullOptions::from(through_transfer()).credentials(good),
    )
    .await;
    assert!(r.token.token_server().expect("endpoint").issued() > issued);

    // A CA file is the client's business: the transfer route refuses it, the default route
    // takes this client's path.
    let err = client
        .pull(
            &r.open_ref,
            PullOptions::from(through_transfer()).ca_file("/nonexistent/ca.pem"),
        )
        .await
        .expect_err("a CA file cannot go to the transfer service");
    assert!(err.to_string().contains("CA file"), "{err}");
    bed.assert_empty().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_through_the_transfer_service() {
    let archive = ImageArchive::busybox("docker.io/library/ctrd-transfer:latest").expect("archive");
    let start = |auth| {
        Registry::start_with(RegistryOptions {
            tls: false,
            auth,
            ..RegistryOptions::default()
        })
        .unwrap_or_else(|e| panic!("{e}"))
    };
    let push = |registry: &Registry| {
        registry
            .push(&archive.path(), "ctrd/busybox", "v1")
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let (open, basic, token) = (
        start(RegistryAuth::Open),
        start(RegistryAuth::Basic),
        start(RegistryAuth::Token),
    );
    let registries = Registries {
        open_ref: push(&open),
        basic_ref: push(&basic),
        token_ref: push(&token),
        open,
        token,
        _basic: basic,
    };
    for daemon in common::daemons() {
        tokio::time::timeout(Duration::from_secs(180), scenario(daemon, &registries))
            .await
            .unwrap_or_else(|_| panic!("containerd {} took over 180 s", daemon.version()));
    }
}
