//! The recursive chown fallback for id-mapped snapshots, where the kernel makes no idmapped
//! mounts: every file of a new active snapshot is given the host ids its owner maps to,
//! through the snapshot's own mount, so the changes land in its upper layer and the
//! parents stay as they are (overlayfs copies each file up: slow and space-hungry for big
//! images, as containerd's own fallback is).

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use ctrd_mount::idmap::IdMap;
use ctrd_snapshots::{Error, Result};

/// Gives every entry under `root` the host ids `map` maps its owner to, keeping
/// set-user-id and set-group-id bits (chown clears them). `root` itself is left as it is
/// (the snapshotter gave it the container root's ids when it made the snapshot).
pub(crate) fn chown_tree(root: &Path, map: &IdMap) -> Result<()> {
    let device = std::fs::symlink_metadata(root)
        .map_err(|e| Error::io("measuring", root, e))?
        .dev();
    let mut pending = vec![root.to_path_buf()];
    while let Some(path) = pending.pop() {
        let meta = std::fs::symlink_metadata(&path).map_err(|e| Error::io("reading", &path, e))?;
        if meta.dev() != device {
            continue;
        }
        if path != root {
            chown_one(&path, &meta, map)?;
        }
        if meta.is_dir() {
            for entry in std::fs::read_dir(&path).map_err(|e| Error::io("listing", &path, e))? {
                let entry = entry.map_err(|e| Error::io("listing", &path, e))?;
                pending.push(entry.path());
            }
        }
    }
    Ok(())
}

/// Gives `path` (whose metadata is `meta`) the host ids of its owner.
fn chown_one(path: &Path, meta: &std::fs::Metadata, map: &IdMap) -> Result<()> {
    let unmapped = |what: &str, id: u32| Error::Io {
        call: "mapping the owner of",
        path: path.to_path_buf(),
        error: std::io::Error::other(format!(
            "its {what} {id} is outside the snapshot's id mapping"
        )),
    };
    let uid = map
        .host_uid(meta.uid())
        .ok_or_else(|| unmapped("uid", meta.uid()))?;
    let gid = map
        .host_gid(meta.gid())
        .ok_or_else(|| unmapped("gid", meta.gid()))?;
    if (uid, gid) != (meta.uid(), meta.gid()) {
        std::os::unix::fs::lchown(path, Some(uid), Some(gid))
            .map_err(|e| Error::io("changing the owner of", path, e))?;
        let mode = meta.permissions().mode();
        if !meta.file_type().is_symlink() && mode & 0o6000 != 0 {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o7777))
                .map_err(|e| Error::io("restoring the mode of", path, e))?;
        }
    }
    Ok(())
}
