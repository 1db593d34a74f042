//! A pull downloads and applies only what is not there yet: the same image pulled twice
//! fetches no blob the second time and applies no layer, and an image sharing its lower
//! layers with one already pulled fetches only its own config and top layer; importing an
//! archive of an image already pulled applies no layer either. Blob requests
//! are counted by a proxy of the test bed between containerd and the registry. On 2.x the same
//! is measured for pulls through the transfer service and printed (the figures are recorded
//! in docs/benchmarks.md).

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use ctrd_client::{ImportOptions, NewContainer, PullOptions, Route, Stdio};
use ctrd_testbed::{CutProxy, Daemon, ImageArchive, Registry};

fn local() -> PullOptions {
    ImportOptions::default()
        .route(Route::Local)
        .unpack("overlayfs")
        .into()
}

async fn snapshot_names(bed: &common::Bed) -> BTreeSet<String> {
    bed.client
        .list_snapshots("overlayfs")
        .await
        .expect("snapshots")
        .into_iter()
        .map(|s| s.name)
        .collect()
}

/// Pulls `reference` with `options`; returns how many blob requests and bytes it took.
async fn pull(
    bed: &common::Bed,
    proxy: &CutProxy,
    reference: &str,
    options: PullOptions,
) -> (usize, u64) {
    let (blobs, bytes) = (proxy.blob_requests(), proxy.bytes_from_server());
    bed.client
        .pull(reference, options)
        .await
        .unwrap_or_else(|e| panic!("pull {reference}: {e}"));
    (
        proxy.blob_requests() - blobs,
        proxy.bytes_from_server() - bytes,
    )
}

/// The layer digests of image `name`'s manifest.
async fn layers(bed: &common::Bed, name: &str) -> Vec<String> {
    let image = bed.client.get_image(name).await.expect("image");
    let manifest: serde_json::Value =
        serde_json::from_slice(&bed.client.read_blob(&image.digest).await.expect("manifest"))
            .expect("manifest JSON");
    manifest["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|l| l["digest"].as_str().expect("digest").to_owned())
        .collect()
}

/// How many of `top`'s lower layers are `base`'s, bottom up.
async fn shared_layers(bed: &common::Bed, base: &str, top: &str) -> usize {
    let (base, top) = (layers(bed, base).await, layers(bed, top).await);
    base.iter().zip(&top).take_while(|(a, b)| a == b).count()
}

/// Runs `test -f PATH` for each of `paths` in `reference`: exit 0 when all are there.
async fn has_files(bed: &common::Bed, reference: &str, paths: &[&str]) {
    let client = &bed.client;
    let script = paths
        .iter()
        .map(|p| format!("test -f {p}"))
        .collect::<Vec<_>>()
        .join(" && ");
    client
        .create_container(NewContainer::new("check", reference).args(["sh", "-c", &script]))
        .await
        .expect("container");
    let (task, _io) = client.new_task("check", Stdio::Null).await.expect("task");
    task.start().await.expect("start");
    assert_eq!(task.wait().await.expect("wait").code, 0, "{reference}");
    task.delete().await.expect("delete task");
    client.delete_container("check").await.expect("delete");
}

async fn scenario(
    daemon: Daemon,
    registry: &Registry,
    base: &str,
    top: &str,
    archive: &std::path::Path,
) {
    eprintln!("containerd {}: pulls skip what is there", daemon.version());
    let namespace = format!("client-skip-{}", daemon.version().replace('.', "-"));
    let bed = common::Bed::start(daemon, &namespace).await;
    let client = &bed.client;
    let proxy = CutProxy::counting(registry.port()).unwrap_or_else(|e| panic!("{e}"));
    let base = format!("{}/{base}", proxy.host());
    let top = format!("{}/{top}", proxy.host());

    // First pull: the config and both layers.
    let (blobs, _) = pull(&bed, &proxy, &base, local()).await;
    assert_eq!(blobs, 3, "first pull of {base}");
    let unpacked = snapshot_names(&bed).await;
    assert_eq!(unpacked.len(), 2, "{unpacked:?}");

    // Again: no blob fetched, no layer applied (a re-applied layer's commit would collide
    // with the snapshot already named by its chain id), and it runs.
    let (blobs, bytes) = pull(&bed, &proxy, &base, local()).await;
    eprintln!("  second pull of the same image: {blobs} blob requests, {bytes} bytes");
    assert_eq!(blobs, 0, "second pull of {base} fetched blobs");
    assert_eq!(snapshot_names(&bed).await, unpacked);
    has_files(&bed, &base, &["/bin/sh", "/etc/first"]).await;

    // The same image from an archive, under its own name: nothing applied again.
    let imported = client
        .import(archive, ImportOptions::default().unpack("overlayfs"))
        .await
        .expect("import");
    assert_eq!(snapshot_names(&bed).await, unpacked);
    has_files(&bed, &imported[0].name, &["/bin/sh", "/etc/first"]).await;
    client
        .remove_image(&imported[0].name)
        .await
        .expect("remove");

    // An image on the same lower layers plus one: its config and the layers the first
    // lacks only. (The test bed's busybox layer is the same blob in every image; the layers
    // above it carry the time they were made, so `/etc/first`'s is shared only when both
    // archives were made in the same second: the shared part is read from the manifests.)
    let (blobs, bytes) = pull(&bed, &proxy, &top, local()).await;
    let shared = shared_layers(&bed, &base, &top).await;
    eprintln!("  image sharing {shared} of 3 layers: {blobs} blob requests, {bytes} bytes");
    assert!(shared >= 1, "the busybox layer is not shared");
    assert_eq!(blobs, 1 + 3 - shared, "pull of {top} over {base}");
    let both = snapshot_names(&bed).await;
    assert_eq!(both.len(), 2 + 3 - shared, "{both:?}");
    assert!(both.is_superset(&unpacked));
    has_files(&bed, &top, &["/bin/sh", "/etc/first", "/etc/second"]).await;

    if daemon.is_v2() {
        // What the transfer service does in the same situations (recorded, not required).
        let transfer = || {
            let mut options: PullOptions = ImportOptions::default()
                .route(Route::Transfer)
                .unpack("overlayfs")
                .into();
            options.plain_http = true;
            options
        };
        let (blobs, bytes) = pull(&bed, &proxy, &top, transfer()).await;
        eprintln!(
            "  transfer service, image present: {blobs} blob requests, {bytes} bytes (containerd {})",
            daemon.version()
        );
        client.remove_image(&top).await.expect("remove");
        let (blobs, bytes) = pull(&bed, &proxy, &top, transfer()).await;
        eprintln!(
            "  transfer service, pulled again after its removal (the shared layers kept): {blobs} blob requests, {bytes} bytes (containerd {})",
            daemon.version()
        );
        has_files(&bed, &top, &["/bin/sh", "/etc/first", "/etc/second"]).await;
    }

    client.remove_image(&top).await.expect("remove");
    client.remove_image(&base).await.expect("remove");
    bed.assert_empty().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_skips_what_is_there() {
    let registry = Registry::start().unwrap_or_else(|e| panic!("{e}"));
    let first = vec![("/etc/first".to_owned(), Some("one\n".to_owned()))];
    let second = vec![("/etc/second".to_owned(), Some("two\n".to_owned()))];
    let base = ImageArchive::layered(
        "docker.io/library/ctrd-skip-base:latest",
        std::slice::from_ref(&first),
    )
    .expect("archive");
    let top = ImageArchive::layered("docker.io/library/ctrd-skip-top:latest", &[first, second])
        .expect("archive");
    let base_archive = base;
    let base = registry
        .push(&base_archive.path(), "ctrd/base", "v1")
        .unwrap_or_else(|e| panic!("{e}"));
    let top = registry
        .push(&top.path(), "ctrd/top", "v1")
        .unwrap_or_else(|e| panic!("{e}"));
    // The references without the registry's host: the proxy's goes in front.
    let strip = |reference: &str| {
        reference
            .split_once('/')
            .map(|(_, path)| path.to_owned())
            .unwrap_or_else(|| panic!("no host in {reference}"))
    };
    let (base, top) = (strip(&base), strip(&top));
    for daemon in common::daemons() {
        tokio::time::timeout(
            Duration::from_secs(180),
            scenario(daemon, &registry, &base, &top, &base_archive.path()),
        )
        .await
        .unwrap_or_else(|_| panic!("containerd {} took over 180 s", daemon.version()));
    }
}
