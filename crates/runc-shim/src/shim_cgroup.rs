//! Placing the shim in the cgroup the runc options name (`shim_cgroup`), as kubelet asks for
//! pods: `start` joins it, and the serving shim it launches inherits the membership.

use std::io::Write;
use std::path::Path;

/// Moves this process into cgroup `path` (relative to the hierarchy roots) on every hierarchy
/// that has it: the unified one on cgroup v2, each controller on v1.
pub fn join(path: &str) -> std::io::Result<()> {
    let relative = path.trim_start_matches('/');
    let root = Path::new("/sys/fs/cgroup");
    let mut targets = Vec::new();
    if root.join("cgroup.controllers").exists() {
        targets.push(root.join(relative));
    } else {
        for hierarchy in std::fs::read_dir(root)?.filter_map(|e| e.ok()) {
            let dir = hierarchy.path().join(relative);
            if dir.is_dir() {
                targets.push(dir);
            }
        }
    }
    if targets.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("no cgroup {path} on any hierarchy"),
        ));
    }
    let pid = std::process::id().to_string();
    for dir in targets {
        std::fs::OpenOptions::new()
            .write(true)
            .open(dir.join("cgroup.procs"))
            .and_then(|mut f| f.write_all(pid.as_bytes()))
            .map_err(|e| {
                std::io::Error::new(e.kind(), format!("joining {}: {e}", dir.display()))
            })?;
    }
    Ok(())
}
