//! OCI bundles: a busybox rootfs and a `config.json` from `runc spec`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{Error, rootfs};

/// A temporary OCI bundle (`config.json` and `rootfs/`), removed when dropped.
#[derive(Debug)]
pub struct Bundle {
    dir: tempfile::TempDir,
}

impl Bundle {
    /// A bundle running `args` in busybox, without a terminal, from runc's default spec.
    pub fn busybox(args: &[&str]) -> Result<Bundle, Error> {
        let dir = tempfile::Builder::new()
            .prefix("ctrd-bundle-")
            .tempdir_in("/tmp")
            .map_err(|e| Error::io("/tmp", e))?;
        let rootfs = dir.path().join("rootfs");
        std::fs::create_dir(&rootfs).map_err(|e| Error::io(&rootfs, e))?;
        rootfs::populate(&rootfs)?;
        let status = Command::new("runc")
            .arg("spec")
            .arg("--bundle")
            .arg(dir.path())
            .status()
            .map_err(|_| Error::Missing {
                what: "runc".into(),
                path: "runc".into(),
            })?;
        if !status.success() {
            return Err(Error::io(
                dir.path(),
                std::io::Error::other(format!("runc spec failed ({status})")),
            ));
        }
        let bundle = Bundle { dir };
        bundle.edit_spec(|spec| {
            spec["process"]["terminal"] = false.into();
            spec["process"]["args"] = args
                .iter()
                .map(|a| a.to_string())
                .collect::<Vec<_>>()
                .into();
            spec["root"]["readonly"] = false.into();
        })?;
        Ok(bundle)
    }

    /// Changes the bundle's `config.json`.
    pub fn edit_spec(&self, edit: impl FnOnce(&mut serde_json::Value)) -> Result<(), Error> {
        let path = self.config_path();
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        let mut spec: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| Error::io(&path, std::io::Error::other(e)))?;
        edit(&mut spec);
        let text = serde_json::to_string_pretty(&spec)
            .map_err(|e| Error::io(&path, std::io::Error::other(e)))?;
        std::fs::write(&path, text).map_err(|e| Error::io(&path, e))
    }

    /// The bundle's folder.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The bundle's `config.json`.
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("config.json")
    }
}
