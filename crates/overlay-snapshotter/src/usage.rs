//! Disk usage of a folder tree, as `du` counts it.

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use ctrd_snapshots::{Error, Result, Usage};

/// The blocks (in bytes) and inodes under `root`, itself included; hard links count once.
pub fn disk_usage(root: &Path) -> Result<Usage> {
    let mut seen = HashSet::new();
    let mut usage = Usage::default();
    let mut pending = vec![root.to_path_buf()];
    while let Some(path) = pending.pop() {
        let meta =
            std::fs::symlink_metadata(&path).map_err(|e| Error::io("measuring", &path, e))?;
        if seen.insert((meta.dev(), meta.ino())) {
            usage.inodes += 1;
            usage.size += i64::try_from(meta.blocks() * 512).unwrap_or(i64::MAX);
        }
        if meta.is_dir() {
            for entry in std::fs::read_dir(&path).map_err(|e| Error::io("listing", &path, e))? {
                let entry = entry.map_err(|e| Error::io("listing", &path, e))?;
                pending.push(entry.path());
            }
        }
    }
    Ok(usage)
}
