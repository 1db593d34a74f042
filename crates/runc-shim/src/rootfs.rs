//! A container's root filesystem as one guard: mounted when made, unmounted exactly once,
//! whichever way the container ends (deleted, or a `Create` that fails half way).

use std::path::{Path, PathBuf};

use ctrd_api::containerd::types::Mount;
use ctrd_mount as mount;

/// The mounts stacked on `BUNDLE/rootfs`. Dropping it unmounts them on the runtime's blocking
/// pool (or in place outside a runtime); [`Rootfs::unmount`] does it and waits.
#[derive(Debug)]
pub struct Rootfs {
    dir: Option<PathBuf>,
}

impl Rootfs {
    /// Mounts `mounts` on `BUNDLE/rootfs`, or nothing when there are none (the bundle
    /// brings its own root). Blocking when there are mounts: then call it off the serving
    /// thread. On failure nothing is left mounted.
    pub fn mount(mounts: &[Mount], bundle: &Path) -> Result<Rootfs, String> {
        if mounts.is_empty() {
            return Ok(Rootfs { dir: None });
        }
        let dir = bundle.join("rootfs");
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mounts: Vec<mount::Mount> = mounts
            .iter()
            .map(|m| mount::Mount {
                kind: m.r#type.clone(),
                source: m.source.clone(),
                target: m.target.clone(),
                options: m.options.clone(),
            })
            .collect();
        mount::mount_all(&mounts, &dir).map_err(|e| e.to_string())?;
        Ok(Rootfs { dir: Some(dir) })
    }

    /// Unmounts now, on the blocking pool, and waits for it.
    pub async fn unmount(mut self) {
        if let Some(dir) = self.dir.take() {
            let _ = tokio::task::spawn_blocking(move || mount::unmount_all(&dir)).await;
        }
    }
}

impl Drop for Rootfs {
    fn drop(&mut self) {
        let Some(dir) = self.dir.take() else {
            return;
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn_blocking(move || mount::unmount_all(&dir));
            }
            Err(_) => mount::unmount_all(&dir),
        }
    }
}
