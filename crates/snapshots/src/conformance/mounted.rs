//! A folder with a snapshot's mounts on it, for the cases that read and write files.

use std::path::Path;

use ctrd_api::containerd::types::Mount as ApiMount;

use crate::{Error, Mount, Result};

/// A new folder under the system's temporary folder with `mounts` mounted on it; unmounted
/// and removed when dropped. Needs root (or the capabilities the mounts need).
#[derive(Debug)]
pub struct Mounted {
    dir: tempfile::TempDir,
}

impl Mounted {
    /// Mounts `mounts`, as the Snapshots API returned them, on a new folder.
    pub fn new(mounts: &[ApiMount]) -> Result<Mounted> {
        let dir = tempfile::Builder::new()
            .prefix("ctrd-conformance-")
            .tempdir()
            .map_err(|e| Error::io("creating a mount point in", std::env::temp_dir(), e))?;
        let plain: Vec<Mount> = mounts
            .iter()
            .map(|m| Mount {
                kind: m.r#type.clone(),
                source: m.source.clone(),
                target: m.target.clone(),
                options: m.options.clone(),
            })
            .collect();
        crate::mount::mount_all(&plain, dir.path())?;
        Ok(Mounted { dir })
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        crate::mount::unmount_all(self.dir.path());
    }
}
