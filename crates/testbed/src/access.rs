//! Who can reach what we create: connecting to a socket as another user, and finding
//! world-writable files, FIFOs, sockets and folders a run left behind.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Gid, Uid, fork, setgid, setgroups, setuid};

use crate::Error;

/// The uid and gid of `nobody` on Debian.
pub const NOBODY: u32 = 65534;

/// What a connection attempt by another user came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// `connect` failed (the socket's file mode or its folder kept the user out).
    Denied,
    /// Connected, then the server hung up without a word.
    Closed,
    /// Connected, and the connection stayed open (or data came).
    Open,
}

/// Connects to the unix socket at `path` as `uid`/`gid` (with no supplementary groups), from a
/// forked child, and reports what happened. Needs root.
pub fn connect_as(path: &Path, uid: u32, gid: u32) -> Result<Access, Error> {
    crate::require_root()?;
    let addr =
        std::os::unix::net::SocketAddr::from_pathname(path).map_err(|e| Error::io(path, e))?;
    // SAFETY: the child only makes system calls (setgroups, setgid, setuid, socket, connect,
    // setsockopt, read) on memory prepared before the fork and ends with _exit; it takes no lock
    // and allocates nothing, so another thread's state at the fork cannot block it.
    let fork = unsafe { fork() }.map_err(|e| Error::io(path, e.into()))?;
    match fork {
        ForkResult::Child => {
            let code = (|| {
                setgroups(&[]).ok()?;
                setgid(Gid::from_raw(gid)).ok()?;
                setuid(Uid::from_raw(uid)).ok()?;
                let Ok(mut stream) = std::os::unix::net::UnixStream::connect_addr(&addr) else {
                    return Some(10);
                };
                stream.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
                let mut byte = [0u8; 1];
                Some(match std::io::Read::read(&mut stream, &mut byte) {
                    Ok(0) => 11,
                    Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => 11,
                    _ => 12,
                })
            })()
            .unwrap_or(1);
            // SAFETY: ends the forked child at once, running no exit handler of the parent's.
            unsafe { nix::libc::_exit(code) }
        }
        ForkResult::Parent { child } => {
            let status = waitpid(child, None).map_err(|e| Error::io(path, e.into()))?;
            match status {
                WaitStatus::Exited(_, 10) => Ok(Access::Denied),
                WaitStatus::Exited(_, 11) => Ok(Access::Closed),
                WaitStatus::Exited(_, 12) => Ok(Access::Open),
                other => Err(Error::io(
                    path,
                    std::io::Error::other(format!(
                        "the child connecting as uid {uid} could not drop privileges ({other:?})"
                    )),
                )),
            }
        }
    }
}

/// Every file, FIFO, socket or folder under `roots` (not following links, not descending into
/// folders `prune` names, such as a container's root filesystem) that any user may write, with
/// its mode. Missing roots are skipped.
pub fn world_writable(roots: &[&Path], prune: &dyn Fn(&Path) -> bool) -> Vec<(PathBuf, u32)> {
    let mut found = Vec::new();
    let mut stack: Vec<PathBuf> = roots.iter().map(|r| r.to_path_buf()).collect();
    while let Some(path) = stack.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        let kind = meta.file_type();
        if kind.is_symlink() {
            continue;
        }
        let mode = meta.permissions().mode();
        let counts = kind.is_file() || kind.is_dir() || kind.is_fifo() || kind.is_socket();
        if counts && mode & 0o002 != 0 {
            found.push((path.clone(), mode & 0o7777));
        }
        if kind.is_dir()
            && !prune(&path)
            && let Ok(entries) = std::fs::read_dir(&path)
        {
            stack.extend(entries.filter_map(|e| e.ok()).map(|e| e.path()));
        }
    }
    found.sort();
    found
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::world_writable;

    #[test]
    fn the_scan_finds_what_anyone_may_write_and_skips_pruned_folders() {
        let dir = tempfile::tempdir().expect("tempdir");
        let set = |name: &str, mode: u32, is_dir: bool| {
            let path = dir.path().join(name);
            if is_dir {
                std::fs::create_dir_all(&path).expect("dir");
            } else {
                std::fs::write(&path, b"x").expect("file");
            }
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
            path
        };
        let open_file = set("open", 0o666, false);
        set("private", 0o600, false);
        let open_dir = set("tmp", 0o1777, true);
        set("rootfs", 0o755, true);
        set("rootfs/open", 0o666, false);
        let found = world_writable(&[dir.path()], &|p| p.ends_with("rootfs"));
        assert_eq!(found, vec![(open_file, 0o666), (open_dir, 0o1777)]);
    }
}
