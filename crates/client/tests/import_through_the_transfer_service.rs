//! Imports carried out by containerd's transfer service (containerd 2.x): the archive goes to
//! the daemon over a streaming-service stream under its flow control, the daemon names, stores
//! and unpacks the image, and our shim runs it. A truncated or corrupt archive is one error
//! line and leaves no content, image, snapshot or lease. On containerd 1.x, which has no
//! transfer service, `Route::Transfer` is refused with an error naming the service.

mod common;

use std::io::{Seek, SeekFrom, Write};
use std::time::Duration;

use ctrd_client::{Error, ImportOptions, NewContainer, Progress, Route, Stdio};
use ctrd_testbed::{Daemon, ImageArchive};
use tokio::io::AsyncReadExt;

const IMAGE: &str = "docker.io/library/ctrd-transfer-import:latest";

fn through_transfer() -> ImportOptions {
    ImportOptions::default()
        .route(Route::Transfer)
        .unpack("overlayfs")
}

/// Expects the import of `path` through the transfer service to fail with one line holding
/// `word`, and nothing left behind.
async fn refused(bed: &common::Bed, path: &std::path::Path, word: &str) {
    eprintln!("  {}: expecting {word:?}", path.display());
    let err = bed
        .client
        .import(path, through_transfer())
        .await
        .expect_err("the import should fail");
    let text = err.to_string();
    eprintln!("    {text}");
    assert!(matches!(err, Error::Archive { .. }), "{err:?}");
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.contains(word), "{word:?} not in: {text}");
    bed.assert_empty().await;
}

async fn scenario(daemon: Daemon, archive: &ImageArchive, dir: &std::path::Path) {
    eprintln!(
        "containerd {}: imports through the transfer service",
        daemon.version()
    );
    let namespace = format!(
        "client-transfer-import-{}",
        daemon.version().replace('.', "-")
    );
    let bed = common::Bed::start(daemon, &namespace).await;
    let client = &bed.client;

    if !daemon.is_v2() {
        let err = client
            .import(archive.path(), through_transfer())
            .await
            .expect_err("1.x has no transfer service");
        eprintln!("  {err}");
        assert!(err.to_string().contains("no transfer service"), "{err}");
        assert_eq!(err.to_string().lines().count(), 1, "{err}");
        bed.assert_empty().await;
        return;
    }

    // The image arrives, named by the archive; the upload's progress is reported.
    let (sender, mut progress) = tokio::sync::mpsc::unbounded_channel();
    let images = client
        .import(archive.path(), through_transfer().progress(sender))
        .await
        .expect("import through the transfer service");
    let names: Vec<&str> = images.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, vec![IMAGE]);
    let length = std::fs::metadata(archive.path()).expect("archive").len();
    let (mut total, mut written, mut saved) = (0, 0, Vec::new());
    while let Ok(p) = progress.try_recv() {
        match p {
            Progress::Total { bytes } => total = bytes,
            Progress::Blob { written: w, .. } => written = w,
            Progress::Image { name } => saved.push(name),
            Progress::Layer { .. } => {}
        }
    }
    assert_eq!((total, written), (length, length), "upload progress");
    assert_eq!(saved, vec![IMAGE.to_owned()]);
    // Unpacked by the daemon: one snapshot per layer (busybox and two on top).
    let snapshots = client.list_snapshots("overlayfs").await.expect("snapshots");
    assert_eq!(snapshots.len(), 3, "{snapshots:?}");

    // It runs with our shim and sees every layer.
    client
        .create_container(NewContainer::new("imported", IMAGE).args([
            "cat",
            "/etc/first",
            "/etc/second",
        ]))
        .await
        .expect("container");
    let (task, mut io) = client
        .new_task("imported", Stdio::fifos(false))
        .await
        .expect("task");
    let stdout = io.stdout.take().expect("stdout pipe");
    let reader = tokio::spawn(async move {
        let mut out = String::new();
        let mut stdout = stdout;
        stdout.read_to_string(&mut out).await.expect("read stdout");
        out
    });
    task.start().await.expect("start");
    assert_eq!(task.wait().await.expect("wait").code, 0);
    assert_eq!(reader.await.expect("stdout"), "one\ntwo\n");
    task.delete().await.expect("delete task");
    client
        .delete_container("imported")
        .await
        .expect("delete container");
    client.remove_image(IMAGE).await.expect("remove image");
    bed.assert_empty().await;

    // Cut short in the middle of a layer.
    let truncated = common::damaged(archive, dir, "truncated.tar", |f, len| {
        f.set_len(len / 2).expect("truncate")
    });
    refused(&bed, &truncated, "transfer service").await;
    // Bytes of the archive changed: a blob no longer matches its digest.
    let corrupt = common::damaged(archive, dir, "corrupt.tar", |f, len| {
        f.seek(SeekFrom::Start(len / 2)).expect("seek");
        f.write_all(b"\xff\x00\xff").expect("write");
    });
    refused(&bed, &corrupt, "transfer service").await;
    // Not an archive at all.
    let garbage = dir.join("garbage.tar");
    std::fs::write(&garbage, vec![0x5a; 4096]).expect("write");
    refused(&bed, &garbage, "transfer service").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_through_the_transfer_service() {
    let archive = ImageArchive::layered(
        IMAGE,
        &[
            vec![("/etc/first".to_owned(), Some("one\n".to_owned()))],
            vec![("/etc/second".to_owned(), Some("two\n".to_owned()))],
        ],
    )
    .expect("archive");
    let dir = tempfile::tempdir().expect("tempdir");
    for daemon in common::daemons() {
        tokio::time::timeout(
            Duration::from_secs(180),
            scenario(daemon, &archive, dir.path()),
        )
        .await
        .unwrap_or_else(|_| panic!("containerd {} took over 180 s", daemon.version()));
    }
}
