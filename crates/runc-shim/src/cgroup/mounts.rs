//! The host's cgroup hierarchies, from `/proc/self/mountinfo`: which folder each v1
//! controller is mounted on, and whether the host is unified (v2 only).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// One mounted cgroup hierarchy.
#[derive(Debug, Clone, PartialEq)]
pub struct Hierarchy {
    /// The cgroup the mount shows as its root (`/` unless the mount is of a subtree).
    root: String,
    /// Where it is mounted.
    mountpoint: PathBuf,
    /// Its v1 controllers (empty for cgroup2).
    controllers: Vec<String>,
    /// A cgroup2 mount.
    unified: bool,
}

impl Hierarchy {
    /// The folder of cgroup `path` (as `/proc/PID/cgroup` writes it) in this hierarchy;
    /// `None` when the cgroup lies outside the mount.
    pub fn folder(&self, path: &str) -> Option<PathBuf> {
        let root = self.root.trim_end_matches('/');
        let rest = path.strip_prefix(root)?;
        if !(rest.is_empty() || rest.starts_with('/')) {
            return None;
        }
        Some(self.mountpoint.join(rest.trim_start_matches('/')))
    }
}

/// The cgroup mounts of a mount table.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Mounts {
    hierarchies: Vec<Hierarchy>,
}

impl Mounts {
    /// This host's cgroup mounts, read once per process (they do not change while a shim
    /// runs, and the mount table grows with every container's rootfs).
    pub fn of_host() -> &'static Mounts {
        static HOST: OnceLock<Mounts> = OnceLock::new();
        HOST.get_or_init(|| {
            std::fs::read_to_string("/proc/self/mountinfo")
                .map(|t| Mounts::parse(&t))
                .unwrap_or_default()
        })
    }

    /// The cgroup mounts of a `mountinfo` text.
    pub fn parse(mountinfo: &str) -> Mounts {
        let hierarchies = mountinfo
            .lines()
            .filter_map(|line| {
                let (mount, fs) = line.split_once(" - ")?;
                let mount: Vec<&str> = mount.split(' ').collect();
                let mut fs = fs.split(' ');
                let (fstype, _source, options) = (fs.next()?, fs.next()?, fs.next()?);
                let (root, mountpoint) = (mount.get(3)?, mount.get(4)?);
                let unified = match fstype {
                    "cgroup2" => true,
                    "cgroup" => false,
                    _ => return None,
                };
                let controllers = if unified {
                    Vec::new()
                } else {
                    options
                        .split(',')
                        .filter(|o| !matches!(*o, "rw" | "ro") && !o.contains('='))
                        .map(str::to_owned)
                        .collect()
                };
                Some(Hierarchy {
                    root: unescape(root),
                    mountpoint: PathBuf::from(unescape(mountpoint)),
                    controllers,
                    unified,
                })
            })
            .collect();
        Mounts { hierarchies }
    }

    /// The cgroup2 mount, when no v1 hierarchy is mounted (a unified host; on a hybrid host
    /// the controllers live in the v1 hierarchies).
    pub fn unified_only(&self) -> Option<&Hierarchy> {
        if self.hierarchies.iter().any(|h| !h.unified) {
            return None;
        }
        self.hierarchies
            .iter()
            .find(|h| h.unified && h.mountpoint == Path::new("/sys/fs/cgroup"))
            .or_else(|| self.hierarchies.iter().find(|h| h.unified))
    }

    /// The v1 hierarchy `controller` is mounted in.
    pub fn v1(&self, controller: &str) -> Option<&Hierarchy> {
        self.hierarchies
            .iter()
            .find(|h| !h.unified && h.controllers.iter().any(|c| c == controller))
    }
}

/// A mountinfo field with its octal escapes (`\040` for a space) decoded.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = bytes.get(i + 1..i + 4).and_then(|d| {
            let d = std::str::from_utf8(d).ok()?;
            u8::from_str_radix(d, 8).ok()
        });
        match (bytes[i], escaped) {
            (b'\\', Some(byte)) => {
                out.push(byte);
                i += 4;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_are_decoded() {
        assert_eq!(unescape("/a\\040b"), "/a b");
        assert_eq!(unescape("/plain"), "/plain");
    }

    #[test]
    fn only_cgroup_mounts_count() {
        let mounts = Mounts::parse(
            "1 0 8:1 / / rw - ext4 /dev/vda rw\n\
             32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n",
        );
        assert_eq!(mounts.hierarchies.len(), 1);
        assert!(mounts.v1("cpu").is_some());
        assert!(mounts.v1("memory").is_none());
        assert!(mounts.unified_only().is_none());
    }
}
