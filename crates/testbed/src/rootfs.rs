//! A busybox root filesystem for containers.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::Error;

/// Where Debian's `busybox-static` puts its binary.
const BUSYBOX: &str = "/bin/busybox";

/// A temporary busybox root filesystem, removed when dropped.
#[derive(Debug)]
pub struct Rootfs {
    dir: tempfile::TempDir,
}

impl Rootfs {
    /// Makes a root filesystem holding static busybox and a link for each of its applets.
    pub fn busybox() -> Result<Rootfs, Error> {
        let dir = tempfile::Builder::new()
            .prefix("ctrd-rootfs-")
            .tempdir_in("/tmp")
            .map_err(|e| Error::io("/tmp", e))?;
        populate(dir.path())?;
        Ok(Rootfs { dir })
    }

    /// The root filesystem's folder.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The root filesystem's folder, owned.
    pub fn to_path_buf(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
}

/// Fills `root` with static busybox, its applet links, and minimal `/etc` files.
pub(crate) fn populate(root: &Path) -> Result<(), Error> {
    let busybox = Path::new(BUSYBOX);
    if !busybox.is_file() {
        return Err(Error::Missing {
            what: "static busybox".into(),
            path: busybox.into(),
        });
    }
    for sub in ["bin", "dev", "etc", "proc", "sys", "tmp", "root", "run"] {
        let p = root.join(sub);
        std::fs::create_dir_all(&p).map_err(|e| Error::io(&p, e))?;
    }
    let target = root.join("bin/busybox");
    std::fs::copy(busybox, &target).map_err(|e| Error::io(&target, e))?;
    let list = Command::new(busybox)
        .arg("--list")
        .output()
        .map_err(|e| Error::io(busybox, e))?;
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet.is_empty() || applet == "busybox" || applet.contains('/') {
            continue;
        }
        let link = root.join("bin").join(applet);
        std::os::unix::fs::symlink("busybox", &link).map_err(|e| Error::io(&link, e))?;
    }
    let passwd = root.join("etc/passwd");
    std::fs::write(
        &passwd,
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
    )
    .map_err(|e| Error::io(&passwd, e))?;
    let group = root.join("etc/group");
    std::fs::write(&group, "root:x:0:\nnogroup:x:65534:\n").map_err(|e| Error::io(&group, e))?;
    Ok(())
}
