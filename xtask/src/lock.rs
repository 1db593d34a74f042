//! `proto/vendor.lock`: which upstream `.proto` files we use, where they come from, and their hashes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::Error;

/// Header written at the top of the lock file.
const HEADER: &str = "\
# Pinned upstream protocol sources, checked by `cargo xtask vendor`.
# Rewritten only by `cargo xtask vendor --update`; do not edit by hand.
";

/// The parsed lock file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Lock {
    /// Debian suite the packages are fetched from.
    pub suite: String,
    /// Source packages, by name.
    #[serde(rename = "package")]
    pub packages: Vec<Package>,
    /// Every pinned file.
    #[serde(rename = "file", default)]
    pub files: Vec<File>,
}

/// One Debian package that carries protos.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Package {
    /// Debian package name.
    pub name: String,
    /// Exact Debian version.
    pub version: String,
    /// Folder inside the package that import paths are relative to.
    pub root: String,
    /// Folders under `root` whose `.proto` files we take.
    pub take: Vec<String>,
}

/// One pinned `.proto` file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct File {
    /// Import path (relative to the package root and to `proto/upstream`).
    pub path: String,
    /// Name of the package that carries it.
    pub package: String,
    /// Lower-case hex sha256 of the file's bytes.
    pub sha256: String,
}

impl Lock {
    /// Reads and parses the lock file.
    pub fn read(path: &Path) -> Result<Lock, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        toml::from_str(&text).map_err(|e| Error::Lock {
            path: path.to_owned(),
            message: e.to_string(),
        })
    }

    /// Writes the lock file with its header.
    pub fn write(&self, path: &Path) -> Result<(), Error> {
        let body = toml::to_string(self).map_err(|e| Error::Lock {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        std::fs::write(path, format!("{HEADER}\n{body}")).map_err(|e| Error::io(path, e))
    }

    /// Import paths of all pinned files.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.files.iter().map(|f| f.path.as_str())
    }
}

/// Hex sha256 of a file's content.
pub fn sha256_file(path: &Path) -> Result<String, Error> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    Ok(Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// Every `.proto` file below `dir`, as paths relative to `dir`, sorted.
pub fn find_protos(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), Error> {
        let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(dir, e))?;
            let path = entry.path();
            let kind = entry.file_type().map_err(|e| Error::io(&path, e))?;
            if kind.is_dir() {
                walk(base, &path, out)?;
            } else if path.extension().is_some_and(|e| e == "proto")
                && let Ok(rel) = path.strip_prefix(base)
            {
                out.push(rel.to_owned());
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    if dir.is_dir() {
        walk(dir, dir, &mut out)?;
    }
    out.sort();
    Ok(out)
}

/// Groups file hashes by path, for comparing two sets of files.
pub fn by_path(files: &[File]) -> BTreeMap<&str, &str> {
    files
        .iter()
        .map(|f| (f.path.as_str(), f.sha256.as_str()))
        .collect()
}
