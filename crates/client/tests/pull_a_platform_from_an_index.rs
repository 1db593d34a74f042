//! Pulling from a multi-platform index in a real registry (pushed with `skopeo copy --all`):
//! this machine's manifest by default (the container sees its platform's file), another
//! platform's when asked (its manifest fetched, the host's not), and a platform the index
//! lacks is one error that leaves nothing. On every selected containerd.

mod common;

use std::time::Duration;

use ctrd_client::{Error, ImportOptions, NewContainer, Platform, PullOptions, Route, Stdio};

/// Pulls by this client (the transfer service's own pulls are tested apart).
fn local() -> ImportOptions {
    ImportOptions::default().route(Route::Local)
}
use ctrd_testbed::{Daemon, ImageArchive, Registry};
use tokio::io::AsyncReadExt;

const OTHER: &str = "arm64";

fn host() -> String {
    Platform::host().to_string()
}

async fn scenario(daemon: Daemon, reference: &str) {
    let started = std::time::Instant::now();
    let step = |what: &str| eprintln!("  {:>6.1?} {what}", started.elapsed());
    eprintln!("containerd {}: multi-platform", daemon.version());
    let namespace = format!("client-platform-{}", daemon.version().replace('.', "-"));
    let bed = common::Bed::start(daemon, &namespace).await;
    let client = &bed.client;
    let other = format!("linux/{OTHER}");
    let has =
        |blobs: &[ctrd_client::ContentInfo], digest: &str| blobs.iter().any(|b| b.digest == digest);

    step("daemon up");
    // Default: this machine's platform, which runs.
    let image = client
        .pull(reference, local().unpack("overlayfs"))
        .await
        .expect("pull");
    // skopeo compressed the layers on the way in, so the registry's digests are its own:
    // read them from the index that was pulled.
    let index: serde_json::Value =
        serde_json::from_slice(&client.read_blob(&image.digest).await.expect("index"))
            .expect("index JSON");
    let manifest_of = |platform: &str| -> String {
        index["manifests"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|m| {
                format!(
                    "{}/{}",
                    m["platform"]["os"].as_str().unwrap_or_default(),
                    m["platform"]["architecture"].as_str().unwrap_or_default()
                ) == platform
            })
            .and_then(|m| m["digest"].as_str())
            .unwrap_or_else(|| panic!("no {platform} in {index}"))
            .to_owned()
    };
    let host_manifest = &manifest_of(&host());
    let other_manifest = &manifest_of(&other);
    step("pulled this platform");
    let blobs = client.list_content(&[]).await.expect("content");
    assert!(has(&blobs, host_manifest) && !has(&blobs, other_manifest));
    client
        .create_container(
            NewContainer::new("platform", reference).args(["cat", "/etc/ctrd-platform"]),
        )
        .await
        .expect("container");
    let (task, mut io) = client
        .new_task("platform", Stdio::fifos(false))
        .await
        .expect("task");
    let mut stdout = io.stdout.take().expect("stdout");
    task.start().await.expect("start");
    let mut said = String::new();
    stdout.read_to_string(&mut said).await.expect("read");
    assert_eq!(task.wait().await.expect("wait").code, 0);
    assert_eq!(said, host());
    task.delete().await.expect("delete task");
    client.delete_container("platform").await.expect("delete");
    client.remove_image(reference).await.expect("remove");
    bed.assert_empty().await;

    step("ran it, removed it");
    // Another platform on request: its manifest, config and layers, unpacked too.
    let platform = Platform::parse(&other).expect("platform");
    client
        .pull(
            reference,
            PullOptions::from(local().unpack("overlayfs")).platform(platform),
        )
        .await
        .expect("pull another platform");
    let blobs = client.list_content(&[]).await.expect("content");
    assert!(has(&blobs, other_manifest) && !has(&blobs, host_manifest));
    assert!(
        !client
            .list_snapshots("overlayfs")
            .await
            .expect("snapshots")
            .is_empty()
    );
    client.remove_image(reference).await.expect("remove");
    bed.assert_empty().await;

    step("pulled another platform, removed it");
    // A platform the index lacks.
    let missing = Platform::parse("linux/s390x").expect("platform");
    let err = client
        .pull(reference, PullOptions::from(local()).platform(missing))
        .await
        .expect_err("no such platform");
    assert!(matches!(err, Error::Image { .. }), "{err:?}");
    assert!(
        err.to_string().contains("no manifest for linux/s390x"),
        "{err}"
    );
    bed.assert_empty().await;
    step("refused a platform the index lacks");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_right_manifest_comes_from_an_index() {
    let registry = Registry::start().unwrap_or_else(|e| panic!("{e}"));
    let archive = ImageArchive::multi_platform("docker.io/library/ctrd-multi:v1", "v1", OTHER)
        .expect("archive");
    let reference = registry
        .push_index(&archive.path(), "ctrd/multi", "v1")
        .unwrap_or_else(|e| panic!("{e}"));
    for daemon in common::daemons() {
        tokio::time::timeout(Duration::from_secs(180), scenario(daemon, &reference))
            .await
            .unwrap_or_else(|_| panic!("containerd {} took over 180 s", daemon.version()));
    }
}
