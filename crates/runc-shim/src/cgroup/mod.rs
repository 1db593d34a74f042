//! A container's cgroup, found once at `Create` from its init process, and its figures read
//! straight from the cgroup files for `Stats` (as the Go shim does), with no runc process per
//! call.
//!
//! On a cgroup v1 host (hybrid included) each controller has its own folder; on a unified
//! (v2) host one folder holds every controller's files. [`Figures::metrics`] packs them as
//! containerd's `io.containerd.cgroups.v1.Metrics` or `v2.Metrics`, field by field as
//! containerd's Go cgroups library fills them.

mod files;
mod mounts;
mod v1;
mod v2;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ctrd_api::TypeUrl;
use ctrd_api::prost_types::Any;

use files::Reader;
pub use mounts::{Hierarchy, Mounts};

/// Where a container's cgroup files are.
#[derive(Debug, Clone, PartialEq)]
pub enum Cgroup {
    /// cgroup v1: each controller's folder, by controller name (`memory`, `cpuacct`, ...).
    V1(HashMap<String, PathBuf>),
    /// cgroup v2: the one folder.
    V2(PathBuf),
}

impl Cgroup {
    /// The cgroup of process `pid`, from `/proc/PID/cgroup` and this host's cgroup mounts.
    pub fn of_process(pid: u32) -> std::io::Result<Cgroup> {
        let path = format!("/proc/{pid}/cgroup");
        let membership = std::fs::read_to_string(&path)?;
        Cgroup::resolve(&membership, Mounts::of_host()).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{path} names no cgroup under a mounted hierarchy"),
            )
        })
    }

    /// The folders a `/proc/PID/cgroup` text names, under `mounts`; `None` when no line
    /// matches a mounted hierarchy.
    pub fn resolve(membership: &str, mounts: &Mounts) -> Option<Cgroup> {
        let lines = membership.lines().filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            Some((controllers, path))
        });
        if let Some(unified) = mounts.unified_only() {
            let (_, path) = lines.into_iter().find(|(c, _)| c.is_empty())?;
            return Some(Cgroup::V2(unified.folder(path)?));
        }
        let mut dirs = HashMap::new();
        for (controllers, path) in lines {
            for controller in controllers.split(',').filter(|c| !c.is_empty()) {
                if let Some(dir) = mounts.v1(controller).and_then(|m| m.folder(path)) {
                    dirs.insert(controller.to_owned(), dir);
                }
            }
        }
        (!dirs.is_empty()).then_some(Cgroup::V1(dirs))
    }

    /// The folder the figures start from, for messages: v1's memory folder, or v2's one.
    pub fn main_folder(&self) -> Option<&Path> {
        match self {
            Cgroup::V1(dirs) => dirs
                .get("memory")
                .or_else(|| dirs.get("cpuacct"))
                .or_else(|| dirs.values().next())
                .map(PathBuf::as_path),
            Cgroup::V2(dir) => Some(dir),
        }
    }

    /// Whether the cgroup still exists (runc removes it when the container is deleted).
    pub fn exists(&self) -> bool {
        match self {
            Cgroup::V1(dirs) => dirs.values().any(|d| d.exists()),
            Cgroup::V2(dir) => dir.exists(),
        }
    }

    /// The cgroup's figures as the metrics message of its version, read through `reader`.
    fn metrics_with(&self, reader: &Reader) -> Any {
        match self {
            Cgroup::V1(dirs) => v1::metrics(reader, dirs).to_any(),
            Cgroup::V2(dir) => v2::metrics(reader, dir).to_any(),
        }
    }
}

/// A container's cgroup and the descriptors its figures are read through (opened on the first
/// `Stats`, kept until the container goes). Clones share the descriptors.
#[derive(Debug, Clone)]
pub struct Figures {
    cgroup: Cgroup,
    reader: Arc<Reader>,
}

impl Figures {
    /// The figures of `cgroup`; nothing is opened yet.
    pub fn new(cgroup: Cgroup) -> Figures {
        Figures {
            cgroup,
            reader: Arc::default(),
        }
    }

    /// The cgroup.
    pub fn cgroup(&self) -> &Cgroup {
        &self.cgroup
    }

    /// The cgroup's figures as the metrics message of its version.
    pub fn metrics(&self) -> Any {
        self.cgroup.metrics_with(&self.reader)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID_MOUNTS: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    const UNIFIED_MOUNTS: &str = "\
25 30 0:22 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";

    #[test]
    fn v1_controllers_share_a_mount() {
        let mounts = Mounts::parse(HYBRID_MOUNTS);
        let cgroup = Cgroup::resolve(
            "9:name=systemd:/\n8:pids:/k8s/c1\n4:memory:/k8s/c1\n2:cpu,cpuacct:/k8s/c1\n0::/\n",
            &mounts,
        )
        .expect("a cgroup");
        let Cgroup::V1(dirs) = cgroup else {
            panic!("a hybrid host is v1: {cgroup:?}")
        };
        assert_eq!(dirs["memory"], Path::new("/sys/fs/cgroup/memory/k8s/c1"));
        assert_eq!(dirs["cpu"], Path::new("/sys/fs/cgroup/cpu,cpuacct/k8s/c1"));
        assert_eq!(
            dirs["cpuacct"],
            Path::new("/sys/fs/cgroup/cpu,cpuacct/k8s/c1")
        );
        assert_eq!(dirs["pids"], Path::new("/sys/fs/cgroup/pids/k8s/c1"));
        assert!(!dirs.contains_key("name=systemd"));
    }

    #[test]
    fn v2_host_has_one_folder() {
        let mounts = Mounts::parse(UNIFIED_MOUNTS);
        assert_eq!(
            Cgroup::resolve("0::/system.slice/cri-containerd-abc.scope\n", &mounts),
            Some(Cgroup::V2(PathBuf::from(
                "/sys/fs/cgroup/system.slice/cri-containerd-abc.scope"
            )))
        );
    }

    #[test]
    fn a_mount_of_a_subtree_strips_its_root() {
        // Inside a container whose cgroup namespace shows /kubepods as the mount's root.
        let mounts = Mounts::parse("25 30 0:22 /kubepods /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n");
        assert_eq!(
            Cgroup::resolve("0::/kubepods/pod1/c1\n", &mounts),
            Some(Cgroup::V2(PathBuf::from("/sys/fs/cgroup/pod1/c1")))
        );
        assert_eq!(Cgroup::resolve("0::/elsewhere\n", &mounts), None);
    }
}
