//! containerd 2.4 unpacks a pull's layers in parallel onto a snapshotter that declares
//! `rebase` (when its transfer service allows more than one unpack at once): each layer above
//! the first is prepared without a parent (labelled with its parent's chain id), applied, and
//! committed onto its parent. Our snapshotter answers such a Prepare with an overlay mount
//! over an empty lower, so the applier keeps deletions and opaque folders as overlay
//! whiteouts. An image whose upper layers delete files and a folder, delete and recreate a
//! folder, make a folder opaque and change modes and owners is pulled from a local registry
//! onto ours (with `rebase` declared) and onto the built-in overlayfs, run with our runc
//! shim, and the trees must be exactly as built, on every selected daemon (1.6 and 2.1 have
//! no parallel unpack: the same tree, one layer after the other).

mod common;

use common::PROXY_NAME;
use common::proxy::Proxied;
use ctrd_overlay_snapshotter::UNPACKED_BEFORE_PARENT;
use ctrd_testbed::{Daemon, ImageArchive, ImageFile, LayerChange, Registry};

const NAMESPACE: &str = "parallel-unpack";
const IMAGE: &str = "docker.io/library/ctrd-whiteouts:latest";

/// What containerd 2.4 logs when it could unpack in parallel but the snapshotter lacks
/// `rebase`.
const SEQUENTIAL: &str = "unpacking will be sequential";

/// Lists `/data` (name, mode, owner, type, sorted), the content of the changed files, and
/// whether busybox's `/bin/vi` (deleted two layers up) is there.
const LIST: &str = "find /data | sort | while read -r f; do stat -c '%n %a %u:%g %F' \"$f\"; \
                    done; cat /data/dir/new /data/dir/new2 /data/mode /data/own /data/opq/only; \
                    echo; test -e /bin/vi && echo vi || echo no-vi";

fn image() -> ImageArchive {
    let write =
        |path: &str, content: &str| LayerChange::Write(ImageFile::new(path, content.as_bytes()));
    let dir = |path: &str, mode: u32, uid: u32, gid: u32| LayerChange::Dir {
        path: path.into(),
        mode,
        uid,
        gid,
    };
    let layers = vec![
        vec![
            dir("/data", 0o755, 0, 0),
            write("/data/keep", "keep"),
            write("/data/gone", "gone"),
            write("/data/dir/old1", "old1"),
            write("/data/dir/old2", "old2"),
            write("/data/opq/x", "x"),
            write("/data/opq/sub/y", "y"),
            write("/data/gonedir/z", "z"),
            write("/data/mode", "m"),
            write("/data/own", "o"),
        ],
        vec![
            LayerChange::Delete("/data/gone".into()),
            LayerChange::Delete("/data/gonedir".into()),
            LayerChange::Delete("/bin/vi".into()),
            // Deleted and made again in one layer: opaque, with new content.
            LayerChange::Opaque("/data/dir".into()),
            write("/data/dir/new", "new"),
            LayerChange::Write(ImageFile::new("/data/mode", b"m2").mode(0o600)),
            LayerChange::Write(
                ImageFile::new("/data/own", b"o2")
                    .mode(0o640)
                    .owner(1000, 1000),
            ),
            dir("/data/newdir", 0o700, 123, 456),
        ],
        vec![
            LayerChange::Opaque("/data/opq".into()),
            write("/data/opq/only", "only"),
            dir("/data", 0o711, 0, 0),
            write("/data/dir/new2", "new2"),
        ],
    ];
    ImageArchive::with_changes(IMAGE, &layers).expect("build the image")
}

fn ctr(proxied: &Proxied, namespace: &str, args: &[&str]) -> String {
    proxied.ctr_ok(namespace, args)
}

/// Pulls `reference` onto `snapshotter`, lists its tree in a container under our shim, and
/// removes the image again.
fn tree_on(proxied: &Proxied, namespace: &str, snapshotter: &str, reference: &str) -> String {
    ctr(
        proxied,
        namespace,
        &[
            "images",
            "pull",
            "--plain-http",
            "--snapshotter",
            snapshotter,
            reference,
        ],
    );
    let out = ctr(
        proxied,
        namespace,
        &[
            "run",
            "--rm",
            "--snapshotter",
            snapshotter,
            "--runtime",
            "io.containerd.runc.v2",
            reference,
            "ctrd-whiteouts",
            "sh",
            "-c",
            LIST,
        ],
    );
    ctr(proxied, namespace, &["images", "rm", "--sync", reference]);
    out
}

#[test]
fn parallel_unpack_keeps_deletions_opaque_folders_modes_and_owners() {
    let shim = ctrd_testbed::OurShim::build().unwrap_or_else(|e| panic!("{e}"));
    let image = image();
    let registry = Registry::start().unwrap_or_else(|e| panic!("{e}"));
    let reference = registry
        .push(&image.path(), "ctrd/whiteouts", "v1")
        .unwrap_or_else(|e| panic!("{e}"));
    let expected = "\
/data 711 0:0 directory
/data/dir 755 0:0 directory
/data/dir/new 644 0:0 regular file
/data/dir/new2 644 0:0 regular file
/data/keep 644 0:0 regular file
/data/mode 600 0:0 regular file
/data/newdir 700 123:456 directory
/data/opq 755 0:0 directory
/data/opq/only 644 0:0 regular file
/data/own 640 1000:1000 regular file
newnew2m2o2only
no-vi
";
    for daemon in Daemon::selected() {
        let proxied = Proxied::start_rebasing(daemon, &[shim.path()]);
        let ours = tree_on(&proxied, NAMESPACE, PROXY_NAME, &reference);
        let log = std::fs::read_to_string(proxied.containerd.log_path()).expect("containerd log");
        let our_log =
            std::fs::read_to_string(proxied.snapshotter.log_path()).expect("snapshotter log");
        let early = our_log.matches(UNPACKED_BEFORE_PARENT).count();
        if daemon == Daemon::Upstream {
            assert!(
                !log.contains(SEQUENTIAL),
                "2.4 unpacked sequentially:\n{log}"
            );
            // The three layers above busybox's, each prepared before its parent.
            assert_eq!(early, 3, "2.4 did not unpack in parallel:\n{our_log}");
        } else {
            assert_eq!(
                early,
                0,
                "{} has no parallel unpack:\n{our_log}",
                daemon.version()
            );
        }
        let built_in = tree_on(&proxied, NAMESPACE, "overlayfs", &reference);
        assert_eq!(ours, expected, "containerd {}: ours", daemon.version());
        assert_eq!(
            built_in,
            expected,
            "containerd {}: built-in",
            daemon.version()
        );
        ctr(&proxied, NAMESPACE, &["content", "prune", "references"]);
        let left = ctr(
            &proxied,
            NAMESPACE,
            &["snapshots", "--snapshotter", PROXY_NAME, "ls"],
        );
        assert_eq!(left.lines().count(), 1, "only the header:\n{left}");
        proxied.assert_nothing_on_disk();
        assert!(
            !ctrd_testbed::runc_root(NAMESPACE)
                .join("ctrd-whiteouts")
                .exists()
        );
    }
}
