//! Root filesystem mounts as block snapshotters hand them to a shim: a filesystem image with
//! the `loop` option becomes the container's root on a loop device, which is freed when the
//! task goes; options meant for containerd's own mount manager (`X-containerd.*`) are refused
//! with a clear error and leave no loop device or mount behind. Each on containerd 1.6, 2.1
//! and 2.4, with our shim and with the daemon's Go shim.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::Shim;
use ctrd_api::containerd::services::tasks::v1 as tasks;
use ctrd_api::containerd::types::Mount;
use ctrd_api::tonic;
use ctrd_client::{Client, ImportOptions, NewContainer};
use ctrd_testbed::{Containerd, Daemon, ImageArchive, OurShim, Rootfs};

const NAMESPACE: &str = "mountopts";
const PROOF: &str = "ext4-proof";

/// An ext4 image of the busybox root filesystem plus a proof file the image's snapshot lacks.
fn ext4_image(dir: &Path) -> PathBuf {
    let rootfs = Rootfs::busybox().expect("rootfs");
    std::fs::write(rootfs.path().join(PROOF), b"from the loop device\n").expect("proof");
    let image = dir.join("rootfs.ext4");
    let out = Command::new("mkfs.ext4")
        .args(["-q", "-F", "-d"])
        .arg(rootfs.path())
        .arg(&image)
        .arg("32M")
        .output()
        .expect("mkfs.ext4 (e2fsprogs) runs");
    assert!(out.status.success(), "mkfs.ext4: {out:?}");
    image
}

/// Loop devices bound to `file` now.
fn loop_devices_of(file: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/sys/block") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| {
            std::fs::read_to_string(e.path().join("loop/backing_file"))
                .is_ok_and(|b| Path::new(b.trim()) == file)
        })
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

/// Creates the task of container `id` with `rootfs` as its root mounts, as containerd does
/// with a snapshotter's mounts.
async fn create_task(client: &Client, id: &str, rootfs: Vec<Mount>) -> Result<(), tonic::Status> {
    let mut request = tonic::Request::new(tasks::CreateTaskRequest {
        container_id: id.into(),
        rootfs,
        ..Default::default()
    });
    request.metadata_mut().insert(
        "containerd-namespace",
        NAMESPACE.parse().expect("namespace header"),
    );
    tasks::tasks_client::TasksClient::new(client.channel())
        .create(request)
        .await
        .map(drop)
}

async fn scenario(daemon: Daemon, shim: Shim) {
    let what = format!("{shim:?} shim on containerd {}", daemon.version());
    let ours = (shim == Shim::Ours).then(|| OurShim::build().expect("our shim"));
    let path: Vec<&Path> = ours.iter().map(|o| o.path()).collect();
    let containerd = Containerd::start_with_path(daemon, &path).expect("containerd");
    let dir = tempfile::tempdir().expect("tempdir");
    let image = ext4_image(dir.path());
    let archive = ImageArchive::busybox("docker.io/library/ctrd-busybox:latest").expect("image");
    let client = Client::connect(containerd.grpc_address())
        .await
        .expect("connect")
        .try_with_namespace(NAMESPACE)
        .expect("namespace");
    client
        .import(archive.path(), ImportOptions::default().unpack("overlayfs"))
        .await
        .expect("import");
    let loop_mount = |extra: &[&str]| Mount {
        r#type: "ext4".into(),
        source: image.display().to_string(),
        options: ["loop", "rw"]
            .iter()
            .chain(extra)
            .map(|s| (*s).to_owned())
            .collect(),
        ..Default::default()
    };

    // A filesystem image on a loop device as the root.
    let check = format!("test -f /{PROOF} && grep -q '^/dev/loop[0-9]* / ext4' /proc/mounts");
    client
        .create_container(
            NewContainer::new("looped", archive.name()).args(["/bin/sh", "-c", &check]),
        )
        .await
        .expect("container");
    create_task(&client, "looped", vec![loop_mount(&[])])
        .await
        .unwrap_or_else(|s| panic!("{what}: create with a loop rootfs: {}", s.message()));
    assert_eq!(
        loop_devices_of(&image).len(),
        1,
        "{what}: one loop device while the task lives"
    );
    let task = client.load_task("looped").await.expect("task");
    task.start().await.expect("start");
    let status = task.wait().await.expect("wait");
    assert_eq!(
        status.code, 0,
        "{what}: the root was the ext4 image on a loop device"
    );
    task.delete().await.expect("delete");
    client
        .delete_container("looped")
        .await
        .expect("delete container");
    assert!(
        loop_devices_of(&image).is_empty(),
        "{what}: the loop device is freed with the task: {:?}",
        loop_devices_of(&image)
    );

    // An option only containerd's mount manager may see: a clear error, nothing left.
    client
        .create_container(NewContainer::new("refused", archive.name()).args(["/bin/true"]))
        .await
        .expect("container");
    let error = create_task(
        &client,
        "refused",
        vec![loop_mount(&["X-containerd.mkdir.path=/nonexistent/x"])],
    )
    .await
    .expect_err("an X-containerd option reaching the shim is an error");
    if shim == Shim::Ours {
        assert!(
            error.message().contains("X-containerd.mkdir.path"),
            "{what}: the error names the option: {}",
            error.message()
        );
    }
    assert!(
        loop_devices_of(&image).is_empty(),
        "{what}: no loop device left after the refusal"
    );
    let daemon_dir = containerd.dir().display().to_string();
    let left: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
        .expect("mountinfo")
        .lines()
        .filter(|l| {
            let point = l.split_whitespace().nth(4).unwrap_or_default();
            let fstype = l.split(" - ").nth(1).unwrap_or_default();
            point.starts_with(&daemon_dir) && fstype.starts_with("ext4")
        })
        .map(str::to_owned)
        .collect();
    assert!(left.is_empty(), "{what}: mounts left: {left:?}");
    client
        .delete_container("refused")
        .await
        .expect("delete container");
}

#[tokio::test(flavor = "current_thread")]
async fn loop_rootfs_and_refused_options_on_our_shim() {
    for daemon in Daemon::selected() {
        scenario(daemon, Shim::Ours).await;
    }
}

#[tokio::test(flavor = "current_thread")]
async fn loop_rootfs_and_refused_options_on_the_go_shim() {
    for daemon in Daemon::selected() {
        scenario(daemon, Shim::Go).await;
    }
}
