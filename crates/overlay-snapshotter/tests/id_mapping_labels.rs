//! The `containerd.io/snapshot/uidmapping` / `gidmapping` labels (user-namespace pods): a
//! snapshot prepared with them shows its parents' files owned by the mapped host ids and
//! has its root owned by the container's root, through idmapped mounts where the kernel
//! makes them and by chowning the snapshot's files otherwise; the parents never change on
//! disk. Bad maps are refused with InvalidArgument and leave nothing. Run as root.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use ctrd_overlay_snapshotter::{GID_MAPPING_LABEL, Options, OverlaySnapshotter, UID_MAPPING_LABEL};
use ctrd_snapshots::{Filter, Labels, Mount, Snapshotter};

const UIDS: &str = "0:100000:65536";
const GIDS: &str = "0:200000:65536";

fn mapping(uids: &str, gids: &str) -> Labels {
    Labels::from([
        (UID_MAPPING_LABEL.to_owned(), uids.to_owned()),
        (GID_MAPPING_LABEL.to_owned(), gids.to_owned()),
    ])
}

fn open(dir: &Path, idmapped_mounts: bool) -> OverlaySnapshotter {
    ctrd_testbed::require_root().expect("these tests mount overlays: run them as root");
    let detected = Options::detect_at(dir);
    if idmapped_mounts {
        assert!(
            detected.idmapped_mounts,
            "this kernel makes no idmapped mounts of {} (Linux 5.19 or later for overlayfs)",
            dir.display()
        );
    }
    let options = Options {
        idmapped_mounts,
        ..detected
    };
    OverlaySnapshotter::open(&dir.join("root"), options).expect("open the snapshotter")
}

/// A folder with `mounts` on it, unmounted when dropped.
struct On(tempfile::TempDir);

impl On {
    fn new(mounts: &[Mount]) -> On {
        let dir = tempfile::tempdir().expect("mount point");
        ctrd_snapshots::mount::mount_all(mounts, dir.path())
            .unwrap_or_else(|e| panic!("mounting {mounts:?}: {e}"));
        On(dir)
    }

    fn owner(&self, name: &str) -> (u32, u32) {
        let meta = std::fs::symlink_metadata(self.0.path().join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        (meta.uid(), meta.gid())
    }
}

impl Drop for On {
    fn drop(&mut self) {
        ctrd_snapshots::mount::unmount_all(self.0.path());
    }
}

/// A committed layer `base` holding files owned by root, by 5:7, and a setuid file.
fn base_layer(s: &OverlaySnapshotter) {
    let mounts = s
        .prepare("base-a", None, Labels::new())
        .expect("prepare base");
    {
        let on = On::new(&mounts);
        for (name, uid, gid) in [("root-file", 0, 0), ("user-file", 5, 7), ("setuid", 0, 0)] {
            let path = on.0.path().join(name);
            std::fs::write(&path, name).expect("write");
            std::os::unix::fs::chown(&path, Some(uid), Some(gid)).expect("chown");
        }
        std::fs::set_permissions(
            on.0.path().join("setuid"),
            std::os::unix::fs::PermissionsExt::from_mode(0o4755),
        )
        .expect("chmod");
        std::fs::create_dir(on.0.path().join("dir")).expect("mkdir");
    }
    s.commit("base", "base-a", None, Labels::new())
        .expect("commit base");
}

fn base_is_untouched(s: &OverlaySnapshotter) {
    let view = s
        .view("check", Some("base"), Labels::new())
        .expect("view base");
    let on = On::new(&view);
    assert_eq!(on.owner("root-file"), (0, 0), "the parent changed on disk");
    assert_eq!(on.owner("user-file"), (5, 7));
    drop(on);
    s.remove("check").expect("remove view");
}

fn mapped_snapshot_shows_mapped_owners(s: &OverlaySnapshotter) {
    base_layer(s);
    let mounts = s
        .prepare("mapped", Some("base"), mapping(UIDS, GIDS))
        .expect("prepare with id mapping labels");
    let options: Vec<&String> = mounts.iter().flat_map(|m| &m.options).collect();
    let has_idmap = options.iter().any(|o| o.starts_with("uidmap="));
    assert_eq!(
        has_idmap,
        s.options().idmapped_mounts,
        "uidmap= options exactly with idmapped mounts: {options:?}"
    );
    {
        let on = On::new(&mounts);
        assert_eq!(
            on.owner(""),
            (100_000, 200_000),
            "the root is the container's root"
        );
        assert_eq!(on.owner("root-file"), (100_000, 200_000));
        assert_eq!(on.owner("user-file"), (100_005, 200_007));
        assert_eq!(on.owner("dir"), (100_000, 200_000));
        let mode = std::fs::metadata(on.0.path().join("setuid"))
            .expect("setuid")
            .mode();
        assert_eq!(mode & 0o7777, 0o4755, "set-user-id kept");
        std::fs::write(on.0.path().join("new"), "x").expect("write into the snapshot");
    }
    let info = s.stat("mapped").expect("stat");
    assert_eq!(
        info.labels.get(UID_MAPPING_LABEL).map(String::as_str),
        Some(UIDS)
    );
    base_is_untouched(s);
    s.remove("mapped").expect("remove");
    s.remove("base").expect("remove base");
    s.cleanup().expect("cleanup");
}

#[test]
fn idmapped_mounts_map_the_parents() {
    let dir = tempfile::tempdir_in("/tmp").expect("temporary folder");
    let s = open(dir.path(), true);
    mapped_snapshot_shows_mapped_owners(&s);
    // A read-only view of one layer is an idmapped bind.
    base_layer(&s);
    let view = s
        .view("mapped-view", Some("base"), mapping(UIDS, GIDS))
        .expect("an id-mapped view");
    {
        let on = On::new(&view);
        assert_eq!(on.owner("user-file"), (100_005, 200_007));
    }
    s.remove("mapped-view").expect("remove view");
    s.remove("base").expect("remove base");
    assert_nothing_left(&s);
}

#[test]
fn without_idmapped_mounts_the_files_are_chowned() {
    let dir = tempfile::tempdir_in("/tmp").expect("temporary folder");
    let s = open(dir.path(), false);
    mapped_snapshot_shows_mapped_owners(&s);
    // A view cannot be chowned: refused, nothing made.
    base_layer(&s);
    let error = s
        .view("mapped-view", Some("base"), mapping(UIDS, GIDS))
        .expect_err("an id-mapped view without idmapped mounts");
    assert_eq!(error.code(), tonic::Code::Unimplemented, "{error}");
    s.remove("base").expect("remove base");
    assert_nothing_left(&s);
}

#[test]
fn a_mapping_with_no_parent_owns_the_root() {
    let dir = tempfile::tempdir_in("/tmp").expect("temporary folder");
    let s = open(dir.path(), false);
    let mounts = s
        .prepare("alone", None, mapping(UIDS, GIDS))
        .expect("prepare");
    assert!(
        mounts.iter().all(|m| m.kind == "bind"),
        "a plain bind: {mounts:?}"
    );
    let on = On::new(&mounts);
    assert_eq!(on.owner(""), (100_000, 200_000));
    drop(on);
    s.remove("alone").expect("remove");
    assert_nothing_left(&s);
}

#[test]
fn bad_mappings_are_invalid_arguments_and_leave_nothing() {
    let dir = tempfile::tempdir_in("/tmp").expect("temporary folder");
    let s = open(dir.path(), false);
    base_layer(&s);
    for (uids, gids) in [
        ("0:100000", GIDS),
        (UIDS, "0:200000:65536:1"),
        ("x:1:1", GIDS),
        ("0:4294967295:1", GIDS),
        ("0:100000:0", GIDS),
        ("1:100000:10", GIDS),
        (UIDS, "5:200000:10"),
        ("0:100000:65536,", GIDS),
    ] {
        for parent in [None, Some("base")] {
            let error = s
                .prepare("bad", parent, mapping(uids, gids))
                .expect_err("a bad mapping");
            assert_eq!(
                error.code(),
                tonic::Code::InvalidArgument,
                "{uids} / {gids}: {error}"
            );
            let status = tonic::Status::from(error);
            assert!(
                status.message().contains("id mapping"),
                "{}",
                status.message()
            );
        }
    }
    let mut left = Vec::new();
    s.walk(&Filter::all(), &mut |info| {
        left.push(info.name);
        Ok(())
    })
    .expect("walk");
    assert_eq!(left, ["base"], "the bad prepares recorded nothing");
    s.remove("base").expect("remove base");
    assert_nothing_left(&s);
}

fn assert_nothing_left(s: &OverlaySnapshotter) {
    s.cleanup().expect("cleanup");
    let left: Vec<_> = std::fs::read_dir(s.root().join("snapshots"))
        .expect("snapshots folder")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "left on disk: {left:?}");
    let remap = s.root().join("remap");
    if remap.exists() {
        let left: Vec<_> = std::fs::read_dir(&remap)
            .expect("remap folder")
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert!(left.is_empty(), "mount points left: {left:?}");
    }
}
