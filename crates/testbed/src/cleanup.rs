//! Finding and ending what a test bed started, and unmounting what it left.

use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// Processes whose command line mentions `needle`, and all their descendants.
pub fn processes_mentioning(needle: &str) -> Vec<Pid> {
    let table = process_table();
    let mut found: Vec<i32> = table
        .iter()
        .filter(|p| p.cmdline.contains(needle))
        .map(|p| p.pid)
        .collect();
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        for p in &table {
            if p.ppid == parent && !found.contains(&p.pid) {
                found.push(p.pid);
            }
        }
        i += 1;
    }
    found.retain(|&pid| pid != std::process::id() as i32);
    found.into_iter().map(Pid::from_raw).collect()
}

/// Sends SIGKILL to `pids` and waits (briefly) for them to disappear.
pub fn kill_all(pids: &[Pid]) {
    for &pid in pids {
        let _ = kill(pid, Signal::SIGKILL);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline && pids.iter().any(|&p| alive(p)) {
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Whether `pid` still exists (and is not a zombie).
pub fn alive(pid: Pid) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// Unmounts everything mounted at or below `dir`, deepest first.
pub fn unmount_under(dir: &Path) {
    let Ok(mountinfo) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let prefix = dir.to_string_lossy().into_owned();
    let mut points: Vec<String> = mountinfo
        .lines()
        .filter_map(|l| l.split_whitespace().nth(4))
        .map(unescape)
        .filter(|p| p == &prefix || p.starts_with(&format!("{prefix}/")))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for point in points {
        let _ = nix::mount::umount2(point.as_str(), nix::mount::MntFlags::MNT_DETACH);
    }
}

/// Removes what a daemon's shims leave per namespace outside its own folder: its containers
/// still in runc's state (force-deleted; only those whose bundle is under `daemon_dir`, as
/// other daemons may share the namespace, such as CRI's `k8s.io`), and runc's state folder and
/// the namespace's cgroups once empty.
pub fn remove_namespace_leftovers(namespace: &str, daemon_dir: &Path) {
    let root = crate::runc_root(namespace);
    remove_runc_leftovers(&root, Some(daemon_dir));
    let _ = std::fs::remove_dir(&root);
    remove_empty_cgroups(namespace);
}

/// Force-deletes the containers in runc's state folder `root` (only those whose bundle is
/// under `daemon_dir`, when given).
pub fn remove_runc_leftovers(root: &Path, daemon_dir: Option<&Path>) {
    if root.is_dir() {
        let listed = std::process::Command::new("runc")
            .arg("--root")
            .arg(root)
            .args(["list", "--format", "json"])
            .output()
            .ok()
            .and_then(|o| serde_json::from_slice::<serde_json::Value>(&o.stdout).ok());
        let ours = listed
            .as_ref()
            .and_then(|v| v.as_array())
            .into_iter()
            .flatten()
            .filter(|c| {
                daemon_dir.is_none_or(|dir| {
                    c["bundle"]
                        .as_str()
                        .is_some_and(|b| Path::new(b).starts_with(dir))
                })
            })
            .filter_map(|c| c["id"].as_str());
        for id in ours {
            let _ = std::process::Command::new("runc")
                .arg("--root")
                .arg(root)
                .args(["delete", "--force", id])
                .output();
        }
    }
}

/// Removes the cgroup `name` (relative to each hierarchy's root) where it is empty, in every
/// hierarchy (cgroup v1 or v2).
pub fn remove_empty_cgroups(name: &str) {
    let _ = std::fs::remove_dir(Path::new("/sys/fs/cgroup").join(name));
    if let Ok(hierarchies) = std::fs::read_dir("/sys/fs/cgroup") {
        for hierarchy in hierarchies.filter_map(|e| e.ok()) {
            let _ = std::fs::remove_dir(hierarchy.path().join(name));
        }
    }
}

/// Mount points in mountinfo escape spaces and a few other bytes as `\ooo`.
fn unescape(field: &str) -> String {
    let mut out = String::new();
    let mut chars = field.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            let code: String = chars.by_ref().take(3).collect();
            match u8::from_str_radix(&code, 8) {
                Ok(b) => out.push(b as char),
                Err(_) => {
                    out.push('\\');
                    out.push_str(&code);
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Every live process (zombies left out) with its command line, arguments joined by spaces.
pub fn live_processes() -> Vec<(i32, String)> {
    process_table()
        .into_iter()
        .filter(|p| !p.zombie)
        .map(|p| (p.pid, p.cmdline))
        .collect()
}

struct Process {
    pid: i32,
    ppid: i32,
    zombie: bool,
    cmdline: String,
}

fn process_table() -> Vec<Process> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let mut fields = stat.rsplit_once(')')?.1.split_whitespace();
            let zombie = fields.next()? == "Z";
            let ppid = fields.next()?.parse().ok()?;
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            Some(Process {
                pid,
                ppid,
                zombie,
                cmdline: String::from_utf8_lossy(&cmdline).replace('\0', " "),
            })
        })
        .collect()
}
