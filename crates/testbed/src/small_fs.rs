//! A small filesystem that fills up: the ground of the disk-full tests.

use std::io::Write;
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags, mount, umount2};

use crate::Error;

/// A tmpfs of a fixed size mounted on a fresh folder; unmounted (with anything mounted
/// below it) and removed when dropped.
///
/// [`fill`](SmallFs::fill) takes every free byte with a ballast file, so the next write of
/// anyone on it fails with `ENOSPC`; [`free`](SmallFs::free) gives the space back.
#[derive(Debug)]
pub struct SmallFs {
    dir: tempfile::TempDir,
}

/// The ballast file's name, at the filesystem's root.
const BALLAST: &str = "ballast";

impl SmallFs {
    /// Mounts a tmpfs of `bytes` bytes (rounded up to pages by the kernel).
    pub fn tmpfs(bytes: u64) -> Result<SmallFs, Error> {
        crate::require_root()?;
        let dir = tempfile::Builder::new()
            .prefix("ctrd-smallfs-")
            .tempdir_in("/tmp")
            .map_err(|e| Error::io("/tmp", e))?;
        let options = format!("size={bytes},mode=0700");
        mount(
            Some("ctrd-smallfs"),
            dir.path(),
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some(options.as_str()),
        )
        .map_err(|e| Error::io(dir.path(), std::io::Error::from(e)))?;
        Ok(SmallFs { dir })
    }

    /// Where it is mounted.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Bytes still free, as `statvfs` reports them to an unprivileged writer.
    pub fn free_bytes(&self) -> Result<u64, Error> {
        let stat = nix::sys::statvfs::statvfs(self.path())
            .map_err(|e| Error::io(self.path(), std::io::Error::from(e)))?;
        Ok(stat.blocks_available() * stat.fragment_size())
    }

    /// Writes a ballast file until the filesystem is full (the write that fails with
    /// `ENOSPC` ends it) and returns the bytes it took.
    pub fn fill(&self) -> Result<u64, Error> {
        self.fill_leaving(0)
    }

    /// Grows the ballast file until at most `leave` bytes are free (about: the kernel counts
    /// in pages), so that a write of more than that fails part-way; returns the bytes taken.
    pub fn fill_leaving(&self, leave: u64) -> Result<u64, Error> {
        let path = self.ballast();
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        let page = vec![0x5a_u8; 4096];
        let mut taken = 0;
        while self.free_bytes()? > leave {
            match file.write(&page) {
                Ok(0) => break,
                Ok(n) => taken += n as u64,
                Err(e) if e.raw_os_error() == Some(nix::libc::ENOSPC) => break,
                Err(e) => return Err(Error::io(&path, e)),
            }
        }
        Ok(taken)
    }

    /// Removes the ballast file, giving its space back.
    pub fn free(&self) -> Result<(), Error> {
        let path = self.ballast();
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(&path, e)),
        }
    }

    fn ballast(&self) -> PathBuf {
        self.path().join(BALLAST)
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        crate::cleanup::unmount_under(self.dir.path());
        let _ = umount2(self.dir.path(), MntFlags::MNT_DETACH);
    }
}
