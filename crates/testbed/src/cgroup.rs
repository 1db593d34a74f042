//! Reading a process's cgroup figures back, to check what a runtime set.

use std::path::Path;

/// The memory limit of `pid`'s cgroup, on a cgroup v1 or v2 host (`None` when unreadable;
/// `u64::MAX` for "max").
pub fn memory_limit(pid: u32) -> Option<u64> {
    let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let unified = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    for line in cgroups.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let file = if controllers.split(',').any(|c| c == "memory") {
            format!("/sys/fs/cgroup/memory{path}/memory.limit_in_bytes")
        } else if controllers.is_empty() && unified {
            format!("/sys/fs/cgroup{path}/memory.max")
        } else {
            continue;
        };
        let text = std::fs::read_to_string(file).ok()?;
        return Some(text.trim().parse().unwrap_or(u64::MAX));
    }
    None
}
