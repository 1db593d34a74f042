//! What a daemon's containers and shims left behind in one namespace: the check every fault
//! and soak test ends with.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::{Containerd, cleanup};

/// Everything still there of `namespace` on `containerd` once every task and container of it
/// was removed, one line per thing, empty when nothing is left:
///
/// - processes: shims (they carry the daemon's socket path in their arguments), runc commands
///   of the namespace (they carry its runc root), and anything still in the namespace's
///   cgroups (containers, execs);
/// - mounts at or below the daemon's folder or the namespace's runc root;
/// - runc state: any container still in `/run/containerd/runc/NAMESPACE`;
/// - sockets: the shim socket of each group in `groups` (the container ids, or the group
///   names containers were put in), where containerd's shims put it, and on containerd 2.4
///   anything in its private socket folder;
/// - cgroups: any folder below the namespace's cgroup, in every hierarchy.
///
/// The daemon's own process is not counted.
pub fn left_behind(containerd: &Containerd, namespace: &str, groups: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    let own = containerd.pid() as i32;
    let runc_root = crate::runc_root(namespace);
    let dir = containerd.dir().to_string_lossy().into_owned();
    let live = cleanup::live_processes();
    for (pid, cmdline) in &live {
        let ours = cmdline.contains(&dir) || cmdline.contains(&*runc_root.to_string_lossy());
        if ours && *pid != own && *pid != std::process::id() as i32 {
            found.push(format!("process {pid}: {cmdline}"));
        }
    }
    for point in mounts_under(&[containerd.dir(), &runc_root]) {
        found.push(format!("mount {point}"));
    }
    if let Ok(entries) = std::fs::read_dir(&runc_root) {
        for entry in entries.filter_map(|e| e.ok()) {
            found.push(format!("runc state {}", entry.path().display()));
        }
    }
    let grpc = containerd.grpc_address().to_string_lossy().into_owned();
    let socket_dir = containerd.socket_dir();
    for group in groups {
        let socket = socket_dir.join(shim_socket_name(&grpc, namespace, group));
        if socket.exists() {
            found.push(format!("shim socket {} (group {group})", socket.display()));
        }
    }
    if socket_dir.starts_with(containerd.dir())
        && let Ok(entries) = std::fs::read_dir(&socket_dir)
    {
        for entry in entries.filter_map(|e| e.ok()) {
            found.push(format!("socket {}", entry.path().display()));
        }
    }
    for cgroup in cgroups_below(namespace) {
        let procs = std::fs::read_to_string(cgroup.join("cgroup.procs")).unwrap_or_default();
        let pids: Vec<&str> = procs.split_whitespace().collect();
        found.push(format!("cgroup {} (processes {pids:?})", cgroup.display()));
    }
    found
}

/// The file name containerd's shims (ours and the Go shim) give the socket of `group`:
/// the sha256 of `ADDRESS/NAMESPACE/GROUP`, in hex.
fn shim_socket_name(grpc_address: &str, namespace: &str, group: &str) -> String {
    let digest = Sha256::digest(format!("{grpc_address}/{namespace}/{group}").as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Mount points at or below any of `roots`.
fn mounts_under(roots: &[&Path]) -> Vec<String> {
    let Ok(mountinfo) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    mountinfo
        .lines()
        .filter_map(|l| l.split_whitespace().nth(4))
        .filter(|point| roots.iter().any(|root| Path::new(point).starts_with(root)))
        .map(str::to_owned)
        .collect()
}

/// Folders below the cgroup `namespace` (relative to each hierarchy's root), in every
/// hierarchy.
fn cgroups_below(namespace: &str) -> Vec<PathBuf> {
    let mut tops = vec![Path::new("/sys/fs/cgroup").join(namespace)];
    if let Ok(hierarchies) = std::fs::read_dir("/sys/fs/cgroup") {
        tops.extend(
            hierarchies
                .filter_map(|e| e.ok())
                .map(|e| e.path().join(namespace)),
        );
    }
    let mut found = Vec::new();
    for top in tops {
        if let Ok(entries) = std::fs::read_dir(&top) {
            found.extend(
                entries
                    .filter_map(|e| e.ok())
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .map(|e| e.path()),
            );
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_names_match_the_shims() {
        // The name ctrd-shim's address tests pin for this address, namespace and id (what
        // Debian's Go shim printed).
        assert_eq!(
            shim_socket_name("/tmp/ctrd-probe-FEvD/c.sock", "default", "probe"),
            "48eb16a8507b4e4b76b7e9d924de86aa19bfdbb92c7f6f4ee190b419715a92e6"
        );
    }
}
