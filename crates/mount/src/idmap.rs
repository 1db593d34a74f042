//! User-namespace id maps in containerd's text form, and idmapped mounts made from them.
//!
//! containerd writes a map as `CONTAINER:HOST:SIZE` entries separated by `,` (the
//! `containerd.io/snapshot/uidmapping` / `gidmapping` snapshot labels, and the `uidmap=` /
//! `gidmap=` mount options a snapshotter returns when the kernel does the mapping). An
//! idmapped mount shows a file owned by container id `C + i` on disk as owned by host id
//! `H + i`: lower layers unpacked as root look owned by the container's root.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::mount::{MoveMountFlags, OpenTreeFlags, move_mount, open_tree};

/// One contiguous range of a map: `size` ids from `container` on show as from `host` on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdRange {
    /// The first id inside the container.
    pub container: u32,
    /// The host id it maps to.
    pub host: u32,
    /// How many ids the range holds.
    pub size: u32,
}

/// A uid map and a gid map. An empty map maps every id to itself, as containerd's does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdMap {
    /// The uid ranges.
    pub uids: Vec<IdRange>,
    /// The gid ranges.
    pub gids: Vec<IdRange>,
}

/// The id the kernel keeps for "no id"; never part of a map.
const INVALID_ID: u64 = u32::MAX as u64;

impl IdMap {
    /// Parses containerd's text form of a uid map and a gid map (either may be empty).
    /// The error says which entry is wrong and why.
    pub fn parse(uids: &str, gids: &str) -> Result<IdMap, String> {
        Ok(IdMap {
            uids: parse_ranges(uids).map_err(|e| format!("uid map {uids:?}: {e}"))?,
            gids: parse_ranges(gids).map_err(|e| format!("gid map {gids:?}: {e}"))?,
        })
    }

    /// The host uid and gid of the container's root (id 0), which must be mapped.
    pub fn root(&self) -> Result<(u32, u32), String> {
        let uid = self
            .host_uid(0)
            .ok_or("the uid map does not map the container's root (uid 0)")?;
        let gid = self
            .host_gid(0)
            .ok_or("the gid map does not map the container's root (gid 0)")?;
        Ok((uid, gid))
    }

    /// The host uid that container uid `id` maps to.
    pub fn host_uid(&self, id: u32) -> Option<u32> {
        to_host(&self.uids, id)
    }

    /// The host gid that container gid `id` maps to.
    pub fn host_gid(&self, id: u32) -> Option<u32> {
        to_host(&self.gids, id)
    }
}

fn parse_ranges(text: &str) -> Result<Vec<IdRange>, String> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    text.split(',')
        .map(|entry| {
            let fields: Vec<&str> = entry.split(':').collect();
            let [container, host, size] = fields.as_slice() else {
                return Err(format!("entry {entry:?} is not CONTAINER:HOST:SIZE"));
            };
            let number = |field: &str| -> Result<u32, String> {
                let n: u64 = field
                    .parse()
                    .map_err(|_| format!("entry {entry:?}: {field:?} is not a number"))?;
                if n >= INVALID_ID {
                    return Err(format!("entry {entry:?}: {n} is out of the id range"));
                }
                u32::try_from(n).map_err(|_| format!("entry {entry:?}: {n} is out of range"))
            };
            let range = IdRange {
                container: number(container)?,
                host: number(host)?,
                size: number(size)?,
            };
            if range.size == 0 {
                return Err(format!("entry {entry:?} maps no ids (size 0)"));
            }
            for start in [range.container, range.host] {
                if u64::from(start) + u64::from(range.size) > INVALID_ID {
                    return Err(format!("entry {entry:?} runs past the last id"));
                }
            }
            Ok(range)
        })
        .collect()
}

fn to_host(ranges: &[IdRange], id: u32) -> Option<u32> {
    if ranges.is_empty() {
        return Some(id);
    }
    ranges.iter().find_map(|r| {
        let offset = id.checked_sub(r.container)?;
        (offset < r.size).then(|| r.host + offset)
    })
}

/// The kernel's form of a map (`/proc/PID/uid_map`): one `CONTAINER HOST SIZE` line each.
fn proc_map(ranges: &[IdRange]) -> String {
    if ranges.is_empty() {
        return format!("0 0 {INVALID_ID}\n");
    }
    ranges
        .iter()
        .map(|r| format!("{} {} {}\n", r.container, r.host, r.size))
        .collect()
}

/// A user namespace holding `map`, kept alive by its descriptor.
#[derive(Debug)]
pub(crate) struct UserNamespace {
    fd: File,
}

impl UserNamespace {
    /// Makes a user namespace with `map`: a forked child unshares one and waits while its
    /// maps are written and the namespace is opened, then exits when told (by a byte: its
    /// pipes may be copied into other threads' children, so end-of-file is not reliable).
    pub(crate) fn new(map: &IdMap) -> Result<UserNamespace, String> {
        let (ready_read, ready_write) =
            nix::unistd::pipe().map_err(|e| format!("making a pipe: {e}"))?;
        let (done_read, done_write) =
            nix::unistd::pipe().map_err(|e| format!("making a pipe: {e}"))?;
        // SAFETY: the child runs only async-signal-safe system calls (unshare, write, read,
        // _exit) on descriptors it already holds, and never returns into Rust code, so the
        // other threads' state (locks, allocator) that fork copies is never touched.
        let child = match unsafe { nix::unistd::fork() } {
            Err(e) => return Err(format!("forking for a user namespace: {e}")),
            Ok(nix::unistd::ForkResult::Child) => {
                let status: u8 = match nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUSER) {
                    Ok(()) => 0,
                    Err(_) => 1,
                };
                let _ = nix::unistd::write(&ready_write, &[status]);
                let mut byte = [0u8; 1];
                let _ = nix::unistd::read(done_read.as_fd(), &mut byte);
                // SAFETY: _exit(2) ends the forked child at once, running no Rust code.
                unsafe { nix::libc::_exit(0) }
            }
            Ok(nix::unistd::ForkResult::Parent { child }) => child,
        };
        drop(ready_write);
        drop(done_read);
        let result = (|| {
            let mut status = [1u8; 1];
            File::from(ready_read)
                .read_exact(&mut status)
                .map_err(|e| format!("waiting for the user namespace: {e}"))?;
            if status[0] != 0 {
                return Err("the kernel refused a new user namespace (unshare)".to_owned());
            }
            let proc = PathBuf::from(format!("/proc/{child}"));
            for (file, ranges) in [("uid_map", &map.uids), ("gid_map", &map.gids)] {
                let path = proc.join(file);
                File::options()
                    .write(true)
                    .open(&path)
                    .and_then(|mut f| f.write_all(proc_map(ranges).as_bytes()))
                    .map_err(|e| format!("writing {}: {e}", path.display()))?;
            }
            let ns = proc.join("ns/user");
            File::open(&ns).map_err(|e| format!("opening {}: {e}", ns.display()))
        })();
        // A byte, not end-of-file: a child forked meanwhile by another thread holds copies
        // of these descriptors, so the pipe may never close.
        let _ = nix::unistd::write(&done_write, &[0]);
        drop(done_write);
        let _ = nix::sys::wait::waitpid(child, None);
        Ok(UserNamespace { fd: result? })
    }
}

/// `mount_setattr(2)`'s flag asking for an idmapped mount.
const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;

/// `struct mount_attr` of linux/mount.h (the first, 32-byte version).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// A detached copy of the mount tree at `path` (recursive with `recursive`), idmapped with
/// `userns`: move it somewhere with [`attach`].
pub(crate) fn idmapped_tree(
    path: &Path,
    userns: &UserNamespace,
    recursive: bool,
) -> Result<OwnedFd, String> {
    let mut flags = OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC;
    if recursive {
        flags |= OpenTreeFlags::AT_RECURSIVE;
    }
    let tree = open_tree(rustix::fs::CWD, path, flags)
        .map_err(|e| format!("cloning the mount at {}: {e}", path.display()))?;
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_IDMAP,
        attr_clr: 0,
        propagation: 0,
        userns_fd: u64::try_from(userns.fd.as_raw_fd()).unwrap_or(u64::MAX),
    };
    let at_flags = nix::libc::AT_EMPTY_PATH
        | if recursive {
            nix::libc::AT_RECURSIVE
        } else {
            0
        };
    // SAFETY: mount_setattr(2) reads `size_of::<MountAttr>()` bytes of a valid, initialised
    // `struct mount_attr` (repr(C), the kernel's first version) and an empty NUL-terminated
    // path; both outlive the call, and `tree` is an open mount descriptor.
    let rc = unsafe {
        nix::libc::syscall(
            nix::libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            c"".as_ptr(),
            at_flags,
            &raw const attr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if rc != 0 {
        return Err(format!(
            "idmapping the mount of {}: {}",
            path.display(),
            std::io::Error::last_os_error()
        ));
    }
    Ok(tree)
}

/// Attaches the detached mount `tree` at `target`.
pub(crate) fn attach(tree: &OwnedFd, target: &Path) -> Result<(), String> {
    move_mount(
        tree,
        c"",
        rustix::fs::CWD,
        target,
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )
    .map_err(|e| format!("attaching an idmapped mount at {}: {e}", target.display()))
}

/// Whether the kernel makes idmapped mounts of `dir`'s filesystem (it needs Linux 5.12 and
/// a filesystem that supports them; overlayfs takes idmapped lower layers from 5.19).
pub fn supported(dir: &Path) -> bool {
    let map = IdMap {
        uids: vec![IdRange {
            container: 0,
            host: 1_000_000,
            size: 1,
        }],
        gids: vec![IdRange {
            container: 0,
            host: 1_000_000,
            size: 1,
        }],
    };
    UserNamespace::new(&map)
        .and_then(|ns| idmapped_tree(dir, &ns, false))
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::{IdMap, IdRange};

    #[test]
    fn containerd_maps_parse() {
        let map = IdMap::parse("0:100000:65536", "0:200000:1,1:300000:10").expect("parse");
        assert_eq!(
            map.uids,
            [IdRange {
                container: 0,
                host: 100_000,
                size: 65536
            }]
        );
        assert_eq!(map.root(), Ok((100_000, 200_000)));
        assert_eq!(map.host_gid(5), Some(300_004));
        assert_eq!(map.host_gid(11), None);
        assert_eq!(map.host_uid(65536), None);
        let identity = IdMap::parse("", "").expect("empty maps");
        assert_eq!(identity.host_uid(42), Some(42));
    }

    #[test]
    fn bad_maps_are_refused_with_the_entry() {
        for bad in [
            "0:1000",
            "0:1000:1:2",
            "a:1000:1",
            "0:-1:1",
            "0:4294967295:1",
            "0:4294967290:10",
            "0:1000:0",
            "0:1000:1,",
            " 0:1000:1",
        ] {
            let error = IdMap::parse(bad, "").expect_err(bad);
            assert!(error.contains("uid map"), "{bad}: {error}");
        }
        let error = IdMap::parse("1:1000:5", "").expect("parse").root();
        assert!(error.is_err(), "root unmapped");
    }
}
