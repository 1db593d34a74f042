//! Pulling from a real registry (Debian's docker-registry on 127.0.0.1, the image pushed with
//! skopeo from an OCI archive the test bed built), then running it; a missing image is one
//! error and leaves nothing. On containerd 1.6 and 2.1.

mod common;

use std::time::Duration;

use ctrd_client::{Error, ImportOptions, NewContainer, Progress, Route, Stdio};
use ctrd_testbed::{Daemon, ImageArchive, Registry};

async fn scenario(daemon: Daemon, reference: &str, host: &str) {
    eprintln!("containerd {}: pull", daemon.version());
    let namespace = format!("client-pull-{}", daemon.version().replace('.', "-"));
    let bed = common::Bed::start(daemon, &namespace).await;
    let client = &bed.client;

    let missing = format!("{host}/ctrd/nope:latest");
    let err = client
        .pull(&missing, ImportOptions::default().route(Route::Local))
        .await
        .expect_err("404");
    assert!(
        matches!(err, Error::Registry { .. }) && err.to_string().contains("404"),
        "{err}"
    );
    bed.assert_empty().await;

    let (sender, mut progress) = tokio::sync::mpsc::unbounded_channel();
    let image = client
        .pull(
            reference,
            ImportOptions::default()
                .route(Route::Local)
                .unpack("overlayfs")
                .progress(sender),
        )
        .await
        .expect("pull");
    assert_eq!(image.name, reference);
    let mut total = 0;
    while let Ok(p) = progress.try_recv() {
        if let Progress::Total { bytes } = p {
            total = bytes;
        }
    }
    assert!(total > 1_000_000, "{total}");

    client
        .create_container(NewContainer::new("pulled", reference).args(["sh", "-c", "exit 6"]))
        .await
        .expect("container");
    let (task, _io) = client.new_task("pulled", Stdio::Null).await.expect("task");
    task.start().await.expect("start");
    assert_eq!(task.wait().await.expect("wait").code, 6);
    task.delete().await.expect("delete task");
    client
        .delete_container("pulled")
        .await
        .expect("delete container");
    client.remove_image(reference).await.expect("remove image");
    bed.assert_empty().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_run_and_nothing_left() {
    let registry = Registry::start().unwrap_or_else(|e| panic!("{e}"));
    let archive = ImageArchive::busybox("docker.io/library/ctrd-pull:latest").expect("archive");
    let reference = registry
        .push(&archive.path(), "ctrd/busybox", "v1")
        .unwrap_or_else(|e| panic!("{e}"));
    for daemon in common::daemons() {
        tokio::time::timeout(
            Duration::from_secs(180),
            scenario(daemon, &reference, &registry.host()),
        )
        .await
        .unwrap_or_else(|_| panic!("containerd {} pull took over 180 s", daemon.version()));
    }
}
