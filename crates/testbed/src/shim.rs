//! Our runc shim, built from this workspace, on a folder containerd can be given as its PATH.

use std::path::{Path, PathBuf};

use crate::Error;

/// A folder holding `containerd-shim-runc-v2` as a link to our shim, removed when dropped.
///
/// Give [`path`](OurShim::path) to [`Containerd::start_with_path`](crate::Containerd::start_with_path)
/// and containerd runs our shim for `io.containerd.runc.v2`.
#[derive(Debug)]
pub struct OurShim {
    dir: tempfile::TempDir,
    binary: PathBuf,
}

impl OurShim {
    /// Builds our shim with the running test's profile and target folder (a no-op when it is
    /// up to date, see [`workspace_bin`](crate::workspace_bin)) and links it into a fresh
    /// folder. `CTRD_RUNC_SHIM` names a binary to use instead.
    pub fn build() -> Result<OurShim, Error> {
        OurShim::build_as("containerd-shim-runc-v2")
    }

    /// Builds our shim as [`OurShim::build`] does, linked into a fresh folder under another
    /// name: `containerd-shim-ctrd-v2` makes it runtime type `io.containerd.ctrd.v2`, beside the
    /// daemon's own Go shim for `io.containerd.runc.v2`.
    pub fn build_as(name: &str) -> Result<OurShim, Error> {
        let binary = match std::env::var_os("CTRD_RUNC_SHIM") {
            Some(path) => PathBuf::from(path),
            None => crate::workspace_bin("ctrd-runc-shim", "containerd-shim-runc-v2")?,
        };
        OurShim::link(&binary, name)
    }

    /// `binary` (a shim built elsewhere, such as a release build) linked as `name` into a
    /// fresh folder.
    pub fn link(binary: &Path, name: &str) -> Result<OurShim, Error> {
        let binary = binary.to_path_buf();
        if !binary.is_file() {
            return Err(Error::Missing {
                what: "our runc shim".into(),
                path: binary,
            });
        }
        let dir = tempfile::Builder::new()
            .prefix("ctrd-ourshim-")
            .tempdir_in("/tmp")
            .map_err(|e| Error::io("/tmp", e))?;
        let link = dir.path().join(name);
        std::os::unix::fs::symlink(&binary, &link).map_err(|e| Error::io(&link, e))?;
        Ok(OurShim { dir, binary })
    }

    /// The folder to put first on containerd's `PATH`.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The shim binary.
    pub fn binary(&self) -> &Path {
        &self.binary
    }
}
