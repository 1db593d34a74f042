//! `uidmap=` / `gidmap=` mounts on this kernel: an overlay's lower files show through the map
//! (its upper layer does not), a read-only bind too, a chain longer than a page still
//! mounts, and a bad map is refused with the entry named and nothing mounted. Run as root.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use ctrd_mount::{Mount, idmap, mount_all, unmount_all};

/// The tests run one at a time: each checks that no idmapped mount point of this process is
/// left in the temporary folder, which another test's mount points in flight would fail.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn require_root_and_idmap(dir: &Path) {
    assert!(
        nix::unistd::geteuid().is_root(),
        "idmapped mounts need root: run these tests as root"
    );
    assert!(
        idmap::supported(dir),
        "this kernel makes no idmapped mounts of {} (Linux 5.12 or later, and a filesystem that supports them)",
        dir.display()
    );
}

fn layer(root: &Path, name: &str, files: &[(&str, u32, u32)]) -> String {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).expect("layer folder");
    for (file, uid, gid) in files {
        let path = dir.join(file);
        std::fs::write(&path, file).expect("write");
        std::os::unix::fs::chown(&path, Some(*uid), Some(*gid)).expect("chown");
    }
    dir.display().to_string()
}

fn owner(path: &Path) -> (u32, u32) {
    let meta = std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (meta.uid(), meta.gid())
}

/// Mounts on a new folder below `root`, unmounted when dropped.
struct On(std::path::PathBuf);

impl On {
    fn mount(root: &Path, name: &str, mounts: &[Mount]) -> Result<On, ctrd_mount::Error> {
        let at = root.join(name);
        std::fs::create_dir_all(&at).expect("mount point");
        mount_all(mounts, &at)?;
        Ok(On(at))
    }
}

impl Drop for On {
    fn drop(&mut self) {
        unmount_all(&self.0);
    }
}

fn overlay(options: Vec<String>) -> Mount {
    Mount {
        kind: "overlay".into(),
        source: "overlay".into(),
        target: String::new(),
        options,
    }
}

#[test]
fn overlay_lower_layers_show_through_the_map() {
    let _serial = one_at_a_time();
    let tmp = tempfile::tempdir().expect("temporary folder");
    let root = tmp.path();
    require_root_and_idmap(root);
    let lower1 = layer(root, "l1", &[("root-file", 0, 0), ("user-file", 5, 7)]);
    let lower2 = layer(root, "l2", &[("top", 0, 0)]);
    let upper = layer(root, "upper", &[("mine", 100_000, 200_000)]);
    let work = layer(root, "work", &[]);
    let options = vec![
        "uidmap=0:100000:65536".into(),
        "gidmap=0:200000:65536".into(),
        format!("workdir={work}"),
        format!("upperdir={upper}"),
        format!("lowerdir={lower2}:{lower1}"),
    ];
    {
        let on = On::mount(root, "mnt", &[overlay(options)]).expect("idmapped overlay");
        assert_eq!(owner(&on.0.join("root-file")), (100_000, 200_000));
        assert_eq!(owner(&on.0.join("user-file")), (100_005, 200_007));
        assert_eq!(owner(&on.0.join("top")), (100_000, 200_000));
        assert_eq!(
            owner(&on.0.join("mine")),
            (100_000, 200_000),
            "upper: as on disk"
        );
    }
    assert_eq!(
        owner(&Path::new(&lower1).join("root-file")),
        (0, 0),
        "disk unchanged"
    );
    let left: Vec<_> = std::fs::read_dir(std::env::temp_dir())
        .expect("temporary folder")
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(&format!("ctrd-idmap-{}-", std::process::id()))
        })
        .collect();
    assert!(
        left.is_empty(),
        "idmapped lower mount points left: {left:?}"
    );
}

#[test]
fn a_read_only_bind_shows_through_the_map() {
    let _serial = one_at_a_time();
    let tmp = tempfile::tempdir().expect("temporary folder");
    let root = tmp.path();
    require_root_and_idmap(root);
    let source = layer(root, "src", &[("f", 3, 4)]);
    let bind = Mount {
        kind: "bind".into(),
        source,
        target: String::new(),
        options: vec![
            "ro".into(),
            "rbind".into(),
            "uidmap=0:1000:100".into(),
            "gidmap=0:2000:100".into(),
        ],
    };
    let on = On::mount(root, "mnt", &[bind]).expect("idmapped bind");
    assert_eq!(owner(&on.0.join("f")), (1003, 2004));
    let err = std::fs::write(on.0.join("new"), "x").expect_err("read-only");
    assert_eq!(err.raw_os_error(), Some(nix::libc::EROFS));
}

#[test]
fn a_chain_longer_than_a_page_mounts_idmapped() {
    let _serial = one_at_a_time();
    let tmp = tempfile::tempdir().expect("temporary folder");
    let root = tmp.path();
    require_root_and_idmap(root);
    let lowers: Vec<String> = (0..128)
        .map(|i| {
            layer(
                root,
                &format!("layers/a-longer-layer-name-{i}/fs"),
                &[(&format!("f{i}"), 0, 0)],
            )
        })
        .collect();
    let options = vec![
        "uidmap=0:100000:65536".into(),
        "gidmap=0:100000:65536".into(),
        format!("lowerdir={}", lowers.join(":")),
    ];
    assert!(options.join(",").len() > 4096, "longer than a page");
    let on = On::mount(root, "mnt", &[overlay(options)]).expect("128 idmapped layers");
    assert_eq!(owner(&on.0.join("f0")), (100_000, 100_000));
    assert_eq!(owner(&on.0.join("f127")), (100_000, 100_000));
}

#[test]
fn a_bad_map_is_refused_and_nothing_is_mounted() {
    let _serial = one_at_a_time();
    let tmp = tempfile::tempdir().expect("temporary folder");
    let root = tmp.path();
    require_root_and_idmap(root);
    let lower = layer(root, "l", &[("f", 0, 0)]);
    let at = root.join("mnt");
    std::fs::create_dir(&at).expect("mount point");
    for (uidmap, gidmap) in [("0:1000", "0:1000:1"), ("0:1000:1", "x:1:1")] {
        let options = vec![
            format!("uidmap={uidmap}"),
            format!("gidmap={gidmap}"),
            format!("lowerdir={lower}:{lower}"),
        ];
        let error = mount_all(&[overlay(options)], &at).expect_err("a bad map");
        let message = error.to_string();
        assert!(message.contains("map"), "{message}");
        assert!(!at.join("f").exists(), "nothing mounted");
    }
}
