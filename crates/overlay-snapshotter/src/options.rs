//! What the overlay snapshotter adds to its mounts, detected from the kernel.

/// Overlay mount options and removal behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Add `index=off` to overlay mounts (the kernel's overlay module defaults to
    /// `index=on`, which refuses lower layers mounted elsewhere with another upper).
    pub index_off: bool,
    /// Add `userxattr` (overlayfs inside a user namespace keeps its xattrs under `user.`).
    pub userxattr: bool,
    /// Leave removed snapshots' folders for `Cleanup` instead of removing them in `Remove`.
    pub async_remove: bool,
    /// Serve snapshots with id mapping labels through idmapped mounts (`uidmap=` /
    /// `gidmap=` options, as containerd's overlay snapshotter does where the kernel can);
    /// otherwise each such snapshot's files are chowned to the mapped ids at `Prepare`.
    pub idmapped_mounts: bool,
}

impl Options {
    /// Options as this machine needs them, idmapped mounts checked on the system's
    /// temporary folder ([`Options::detect_at`] checks the snapshotter's own root).
    pub fn detect() -> Options {
        Options::detect_at(&std::env::temp_dir())
    }

    /// Options as this machine needs them, idmapped mounts checked on the filesystem of
    /// `root` (an existing folder).
    pub fn detect_at(root: &std::path::Path) -> Options {
        Options {
            index_off: index_on_by_default(),
            userxattr: in_user_namespace(),
            async_remove: false,
            idmapped_mounts: ctrd_mount::idmap::supported(root),
        }
    }
}

fn index_on_by_default() -> bool {
    std::fs::read_to_string("/sys/module/overlay/parameters/index").is_ok_and(|v| v.trim() == "Y")
}

/// Whether this process runs in a user namespace other than the initial one, whose uid map
/// is the whole 32-bit range from 0.
fn in_user_namespace() -> bool {
    std::fs::read_to_string("/proc/self/uid_map").is_ok_and(|map| {
        let fields: Vec<&str> = map.split_whitespace().collect();
        fields != ["0", "0", "4294967295"]
    })
}
