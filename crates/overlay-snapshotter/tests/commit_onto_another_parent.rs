//! Rebase, as containerd 2.2+ uses it for parallel unpack, against our snapshotter served
//! in-process over gRPC: a layer prepared without a parent but labelled with its parent's
//! chain id gets an overlay mount (upper, work, an empty lower) so whiteouts are written as
//! overlay whiteouts; `Commit` with a parent links it onto that parent (stat, usage, mounts
//! of a child, removal order); committing onto a parent other than the prepare's, or onto a
//! missing one, is refused and leaves the active snapshot as it was. A parentless prepare
//! without the label is still a bind mount (containerd 1.x and sequential unpack).

mod common;

use common::InProcess;
use ctrd_snapshots::conformance::{Mounted, calls};
use tonic::Code;

const PARENT_LABEL: &str = "containerd.io/snapshot/parent-chain-id";

fn option<'a>(mount: &'a ctrd_api::containerd::types::Mount, name: &str) -> Option<&'a str> {
    mount
        .options
        .iter()
        .find_map(|o| o.strip_prefix(name).and_then(|v| v.strip_prefix('=')))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_layer_unpacked_before_its_parent_commits_onto_it() {
    let server = InProcess::start().await;
    let t = &server.target;
    let root = server.snapshotter.root().to_owned();

    // The parent layer: a file and a folder.
    let mounts = calls::prepare(t, "rb-base-a", "")
        .await
        .expect("prepare base");
    assert_eq!(
        mounts[0].r#type, "bind",
        "a plain parentless prepare stays a bind"
    );
    {
        let m = Mounted::new(&mounts).expect("mount base");
        std::fs::write(m.path().join("gone"), "gone").expect("write");
        std::fs::create_dir(m.path().join("dir")).expect("mkdir");
        std::fs::write(m.path().join("dir/old"), "old").expect("write");
    }
    calls::commit(t, "rb-base", "rb-base-a")
        .await
        .expect("commit base");

    // The upper layer, prepared before it knows its parent.
    let mounts = calls::prepare_labelled(t, "rb-top-a", "", &[(PARENT_LABEL, "rb-base")])
        .await
        .expect("prepare the early layer");
    assert_eq!(mounts.len(), 1);
    assert_eq!(mounts[0].r#type, "overlay", "{mounts:?}");
    let upper = option(&mounts[0], "upperdir").expect("upperdir").to_owned();
    assert!(option(&mounts[0], "workdir").is_some(), "{mounts:?}");
    let lower = option(&mounts[0], "lowerdir").expect("lowerdir");
    assert_eq!(lower, root.join("empty").to_string_lossy());
    assert_eq!(
        std::fs::read_dir(lower).expect("empty lower").count(),
        0,
        "the shared lower stays empty"
    );
    {
        // Mountable as it is; write what an applier would: a whiteout and an opaque folder.
        let m = Mounted::new(&mounts).expect("mount the early layer");
        std::fs::write(m.path().join("new"), "new").expect("write");
    }
    nix::sys::stat::mknod(
        &std::path::Path::new(&upper).join("gone"),
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::empty(),
        0,
    )
    .expect("a whiteout in the upper");
    std::fs::create_dir(std::path::Path::new(&upper).join("dir")).expect("mkdir");
    xattr_opaque(&std::path::Path::new(&upper).join("dir"));

    // Refused: a parent that does not exist, and (for a snapshot prepared on a parent) a
    // different one. Nothing changes.
    let missing = calls::commit_onto(t, "rb-top", "rb-top-a", "rb-nothing").await;
    assert_eq!(missing.expect_err("missing parent").code(), Code::NotFound);
    calls::prepare(t, "rb-other-a", "rb-base")
        .await
        .expect("prepare on base");
    calls::commit(t, "rb-other", "rb-other-a")
        .await
        .expect("commit other");
    calls::prepare(t, "rb-child-a", "rb-base")
        .await
        .expect("prepare on base");
    let changed = calls::commit_onto(t, "rb-x", "rb-child-a", "rb-other").await;
    let status = changed.expect_err("changed parent");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("prepared on"), "{status:?}");
    assert_eq!(
        calls::stat(t, "rb-child-a")
            .await
            .expect("still active")
            .parent,
        "rb-base"
    );
    calls::remove(t, "rb-child-a").await.expect("remove");

    calls::commit_onto(t, "rb-top", "rb-top-a", "rb-base")
        .await
        .expect("commit onto base");
    let info = calls::stat(t, "rb-top").await.expect("stat top");
    assert_eq!(info.parent, "rb-base");
    let (size, inodes) = calls::usage(t, "rb-top").await.expect("usage");
    assert!(
        size > 0 && inodes >= 3,
        "usage of the upper: {size} bytes, {inodes} inodes"
    );

    // A child of the rebased layer sees both, with the deletions applied.
    let mounts = calls::view(t, "rb-view", "rb-top").await.expect("view");
    let lowers = option(&mounts[0], "lowerdir").expect("lowerdir").to_owned();
    assert_eq!(lowers.split(':').count(), 2, "{lowers}");
    {
        let m = Mounted::new(&mounts).expect("mount the view");
        let mut names: Vec<String> = std::fs::read_dir(m.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["dir", "new"]);
        assert_eq!(
            std::fs::read_dir(m.path().join("dir"))
                .expect("dir")
                .count(),
            0
        );
    }
    let refused = calls::remove(t, "rb-base")
        .await
        .expect_err("base has children");
    assert_eq!(refused.code(), Code::FailedPrecondition);
    for key in ["rb-view", "rb-top", "rb-other", "rb-base"] {
        calls::remove(t, key)
            .await
            .unwrap_or_else(|e| panic!("remove {key}: {e}"));
    }
    let left = std::fs::read_dir(root.join("snapshots"))
        .expect("list")
        .count();
    assert_eq!(left, 0, "nothing left in snapshots/");
    server.stop().await;
}

fn xattr_opaque(dir: &std::path::Path) {
    rustix::fs::setxattr(
        dir,
        "trusted.overlay.opaque",
        b"y",
        rustix::fs::XattrFlags::empty(),
    )
    .expect("mark the folder opaque");
}
