//! A pull whose layer download is cut mid-way (a TCP proxy of the test bed drops the
//! connection once) resumes with a range request from the offset containerd's ingest holds,
//! and the blob still verifies against its digest. On every selected containerd.

mod common;

use std::time::Duration;

use ctrd_client::{ImportOptions, NewContainer, Route, Stdio};
use ctrd_testbed::{CutProxy, Daemon, ImageArchive, Registry};

/// Where the proxy cuts: past the manifest and config, inside the busybox layer.
const CUT_AFTER: u64 = 384 * 1024;

async fn scenario(daemon: Daemon, registry: &Registry) {
    eprintln!("containerd {}: resume", daemon.version());
    let namespace = format!("client-resume-{}", daemon.version().replace('.', "-"));
    let bed = common::Bed::start(daemon, &namespace).await;
    let client = &bed.client;
    let proxy = CutProxy::start(registry.port(), CUT_AFTER).unwrap_or_else(|e| panic!("{e}"));
    let reference = format!("{}/ctrd/busybox:v1", proxy.host());

    let image = client
        .pull(
            &reference,
            ImportOptions::default()
                .route(Route::Local)
                .unpack("overlayfs"),
        )
        .await
        .unwrap_or_else(|e| panic!("pull through the cutting proxy: {e}"));
    assert_eq!(proxy.cuts(), 1, "the proxy never cut a connection");
    assert!(
        proxy.connections() >= 2,
        "no second connection after the cut"
    );
    let layer_size = client.image_size(&reference).await.expect("size");
    assert!(layer_size > CUT_AFTER * 2, "{layer_size}");
    assert_eq!(image.name, reference);

    // The resumed layer unpacked into a working root filesystem.
    client
        .create_container(NewContainer::new("resumed", &reference).args(["sh", "-c", "exit 4"]))
        .await
        .expect("container");
    let (task, _io) = client.new_task("resumed", Stdio::Null).await.expect("task");
    task.start().await.expect("start");
    assert_eq!(task.wait().await.expect("wait").code, 4);
    task.delete().await.expect("delete task");
    client.delete_container("resumed").await.expect("delete");
    client.remove_image(&reference).await.expect("remove");
    bed.assert_empty().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_download_resumes_and_verifies() {
    let registry = Registry::start().unwrap_or_else(|e| panic!("{e}"));
    let archive = ImageArchive::busybox("docker.io/library/ctrd-resume:latest").expect("archive");
    registry
        .push(&archive.path(), "ctrd/busybox", "v1")
        .unwrap_or_else(|e| panic!("{e}"));
    for daemon in common::daemons() {
        tokio::time::timeout(Duration::from_secs(180), scenario(daemon, &registry))
            .await
            .unwrap_or_else(|_| panic!("containerd {} took over 180 s", daemon.version()));
    }
}
