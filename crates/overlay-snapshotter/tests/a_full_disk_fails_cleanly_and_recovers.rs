//! The disk fills up under `ctrd-overlay-snapshotter --root` (a 16 MiB tmpfs that a ballast
//! file fills): Prepare, View and Commit answer a clear error naming the lack of space, record
//! nothing half-made, the committed layer and its files stay as they were, a Remove still
//! works (the metadata store's reserve) and takes the snapshot's folder with it, and
//! everything works again once the space comes back. No containerd needed.

mod common;

use std::path::Path;

use common::proxy::binary;
use ctrd_api::containerd::services::snapshots::v1 as api;
use ctrd_snapshots::conformance::calls::{cleanup, commit, list, prepare, remove, stat, view};
use ctrd_snapshots::conformance::{Mounted, Target};
use ctrd_testbed::{SmallFs, SnapshotterProcess};

const SIZE: u64 = 16 << 20;
const PAYLOAD: &[u8] = b"what the committed layer holds\n";

fn says_no_space(status: &tonic::Status) -> bool {
    let message = status.message().to_lowercase();
    message.contains("no space left") || message.contains("storage full")
}

async fn target(process: &SnapshotterProcess) -> Target {
    Target::direct(&process.address())
        .await
        .expect("connect to the snapshotter")
}

/// Reads `file` from a view of the committed snapshot `parent`, removing the view.
async fn read_through_view(t: &Target, parent: &str, key: &str, file: &str) -> Vec<u8> {
    let mounts = view(t, key, parent).await.expect("view of the layer");
    let bytes = {
        let mounted = Mounted::new(&mounts).expect("mount the snapshot");
        std::fs::read(mounted.path().join(file)).expect("the layer's file")
    };
    remove(t, key).await.expect("remove the view");
    bytes
}

fn folders_under(path: &Path) -> usize {
    std::fs::read_dir(path).map(|d| d.count()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_fails_cleanly_and_recovers() {
    let disk = SmallFs::tmpfs(SIZE).unwrap_or_else(|e| panic!("{e}"));
    let root = disk.path().join("root");
    let mut process = SnapshotterProcess::start_on(binary(), &root, &[])
        .unwrap_or_else(|e| panic!("starting our snapshotter: {e}"));
    let t = target(&process).await;

    // A layer committed while there is room.
    let mounts = prepare(&t, "layer-active", "").await.expect("prepare");
    {
        let mounted = Mounted::new(&mounts).expect("mount the snapshot");
        std::fs::write(mounted.path().join("file"), PAYLOAD).expect("write into the layer");
    }
    commit(&t, "layer", "layer-active").await.expect("commit");
    // An active snapshot on it, with a file, to commit once the disk is full.
    let mounts = prepare(&t, "upper-active", "layer").await.expect("prepare");
    {
        let mounted = Mounted::new(&mounts).expect("mount the snapshot");
        std::fs::write(mounted.path().join("upper"), b"upper\n").expect("write");
    }
    // One to remove while the disk is full (as containerd removes a failed unpack's).
    prepare(&t, "to-remove", "layer").await.expect("prepare");
    let snapshots_before = folders_under(&root.join("snapshots"));

    let taken = disk.fill().unwrap_or_else(|e| panic!("{e}"));
    let free = disk.free_bytes().unwrap_or_else(|e| panic!("{e}"));
    println!("ballast took {taken} bytes; {free} bytes left");

    let mut refused = Vec::new();
    for key in ["full-1", "full-2", "full-3"] {
        match prepare(&t, key, "layer").await {
            Ok(_) => {}
            Err(status) => refused.push((key, status)),
        }
    }
    let view_refused = view(&t, "full-view", "layer").await.err();
    let commit_refused = commit(&t, "upper", "upper-active").await.err();
    println!(
        "on a full disk: {} of 3 prepares refused ({:?}); view {:?}; commit {:?}",
        refused.len(),
        refused.first().map(|(_, s)| s.message().to_owned()),
        view_refused.as_ref().map(|s| s.message().to_owned()),
        commit_refused.as_ref().map(|s| s.message().to_owned()),
    );
    assert!(
        !refused.is_empty(),
        "a prepare on a full disk must fail (tmpfs of {SIZE} bytes, {free} free)"
    );
    for (key, status) in &refused {
        assert!(
            says_no_space(status),
            "prepare {key}: the error names the full disk: {status:?}"
        );
        let listed = stat(&t, key).await;
        assert_eq!(
            listed.map(|i| i.name).map_err(|s| s.code()),
            Err(tonic::Code::NotFound),
            "a refused prepare records nothing"
        );
    }
    if let Some(status) = &view_refused {
        assert!(says_no_space(status), "view: {status:?}");
    }
    if let Some(status) = &commit_refused {
        assert!(says_no_space(status), "commit: {status:?}");
        let info = stat(&t, "upper-active")
            .await
            .expect("the active snapshot stays");
        assert_eq!(info.kind, api::Kind::Active as i32);
    }

    // Removing while full works: the store gives up its reserve to commit the removal, and
    // the snapshot's folder goes, which is how space comes back.
    let folders_full = folders_under(&root.join("snapshots"));
    let removed = remove(&t, "to-remove").await;
    assert!(
        removed.is_ok(),
        "a remove on a full disk succeeds: {:?}",
        removed.as_ref().map_err(|s| s.message().to_owned())
    );
    assert_eq!(
        stat(&t, "to-remove")
            .await
            .map(|_| ())
            .map_err(|s| s.code()),
        Err(tonic::Code::NotFound),
        "the removed snapshot is gone from the store"
    );
    cleanup(&t).await.expect("cleanup on a full disk");
    let kept = list(&t, &[]).await.expect("list on a full disk");
    assert_eq!(
        folders_under(&root.join("snapshots")),
        kept.len(),
        "on the full disk, one folder per snapshot kept ({kept:?}) is left: the removed \
         one's and those of the refused calls are gone (there were {folders_full})"
    );

    // Still on a full disk: what was committed reads back whole, through a view when one
    // could be made, else from its folder.
    let layer = stat(&t, "layer").await.expect("the committed layer");
    assert_eq!(layer.kind, api::Kind::Committed as i32);

    // The space comes back: the same calls succeed, and the layer is as it was.
    disk.free().unwrap_or_else(|e| panic!("{e}"));
    for key in ["full-1", "full-2", "full-3"] {
        let _ = remove(&t, key).await;
        prepare(&t, key, "layer")
            .await
            .unwrap_or_else(|e| panic!("prepare {key} after space came back: {e:?}"));
        remove(&t, key).await.expect("remove");
    }
    if commit_refused.is_some() {
        commit(&t, "upper", "upper-active")
            .await
            .expect("commit after space came back");
    }
    let _ = remove(&t, "full-view").await;
    let reserve = std::fs::metadata(root.join("metadata.redb.reserve")).map(|m| m.len());
    assert_eq!(
        reserve.ok(),
        Some(ctrd_snapshots::RESERVE_BYTES),
        "the store took its reserve again once there was room"
    );
    assert_eq!(
        read_through_view(&t, "layer", "check-view", "file").await,
        PAYLOAD,
        "the committed layer's file"
    );
    assert_eq!(
        read_through_view(&t, "upper", "check-upper", "upper").await,
        b"upper\n",
        "the layer committed after recovery"
    );

    // A restart finds the same store (nothing corrupt), and Cleanup leaves no orphan.
    drop(t);
    process
        .restart()
        .unwrap_or_else(|e| panic!("restarting the snapshotter: {e}"));
    let t = target(&process).await;
    let mut keys = list(&t, &[]).await.expect("list");
    keys.sort();
    assert_eq!(keys, vec!["layer".to_owned(), "upper".to_owned()]);
    remove(&t, "upper").await.expect("remove");
    remove(&t, "layer").await.expect("remove");
    cleanup(&t).await.expect("cleanup");
    assert_eq!(
        folders_under(&root.join("snapshots")),
        0,
        "no snapshot folder left (there were {snapshots_before} before the disk filled)"
    );
    drop(t);
    let status = process.stop();
    assert!(
        status.is_some_and(|s| s.success()),
        "the snapshotter ends cleanly on SIGTERM: {status:?}"
    );
}
