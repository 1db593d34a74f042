//! `cargo xtask vendor`: fetch the pinned upstream protos, verify them, and compile them into the
//! checked-in descriptor sets.
//!
//! For each [pinned source](crate::pinned::SOURCES), the files come from Debian: the packages
//! named in its lock, downloaded from the pinned suite by `scripts/debian-fetch.sh` (no install,
//! no Go dependency tree). `--from DIR` takes the files from a local source tree instead. Every
//! file is checked against its pinned sha256 (`--update` re-pins to what is published now), then
//! the files are compiled into the source's descriptor set under `proto/descriptors/`, which is
//! what `cargo xtask regen` reads. `--check` compares the compiled set with the checked-in one
//! instead of writing it: the drift check of the network half of the pipeline.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::lock::{self, File, Lock};
use crate::pinned::{SOURCES, Source};
use crate::{Error, repo_root};

/// Options of `cargo xtask vendor`.
#[derive(Debug, Default)]
pub struct Options {
    /// Re-pin the lock to the files fetched now.
    pub update: bool,
    /// Take files from this local tree instead of Debian.
    pub from: Option<PathBuf>,
    /// Only check that the checked-in descriptor sets are what the fetched files compile to.
    pub check: bool,
}

/// A package whose pinned version is no longer published.
#[derive(Debug)]
struct Moved {
    name: String,
    pinned: String,
    published: String,
}

/// Runs the vendor step for every pinned source.
pub fn run(opts: &Options) -> Result<(), Error> {
    let root = repo_root();
    for source in SOURCES {
        run_source(&root, source, opts)?;
    }
    Ok(())
}

/// Fetches, verifies and installs one source's files, then writes or checks its descriptor set.
fn run_source(root: &Path, source: &Source, opts: &Options) -> Result<(), Error> {
    let lock_file = source.lock;
    let upstream_dir = source.upstream;
    let lock_path = root.join(lock_file);
    let pinned = Lock::read(&lock_path)?;
    let staging = tempfile::tempdir().map_err(|e| Error::io(Path::new("tempdir"), e))?;

    let (fetched, moved) = match &opts.from {
        Some(dir) => (
            stage_from_dir(&pinned, dir, opts.update, staging.path())?,
            Vec::new(),
        ),
        None => stage_from_debian(root, &pinned, opts.update, staging.path())?,
    };

    if opts.update {
        fetched.write(&lock_path)?;
        println!(
            "vendor: re-pinned {} files in {lock_file}",
            fetched.files.len()
        );
    } else {
        verify(&pinned, &fetched, &moved, lock_file)?;
    }
    install(staging.path(), &fetched, &root.join(upstream_dir))?;
    println!(
        "vendor: {} files in {upstream_dir} match {lock_file}",
        fetched.files.len()
    );
    let paths: Vec<String> = fetched.paths().map(str::to_owned).collect();
    let compiled = source.compile(root, &paths)?;
    source.sync_descriptors(root, &compiled, opts.check && !opts.update)
}

/// Downloads the lock's packages and builds a lock describing what was fetched.
///
/// Returns the new lock and the packages whose pinned version is no longer published (fetched at
/// the published version instead, so the caller can tell drift from tampering).
fn stage_from_debian(
    root: &Path,
    pinned: &Lock,
    update: bool,
    staging: &Path,
) -> Result<(Lock, Vec<Moved>), Error> {
    let script = root.join("scripts/debian-fetch.sh");
    let cache = tempfile::tempdir().map_err(|e| Error::io(Path::new("tempdir"), e))?;
    let names: Vec<&str> = pinned.packages.iter().map(|p| p.name.as_str()).collect();

    let published = fetch_script(
        &script,
        cache.path(),
        "versions",
        &pinned.suite,
        None,
        &names,
    )?;
    let mut moved = Vec::new();
    let mut specs = Vec::new();
    let mut packages = Vec::new();
    for package in &pinned.packages {
        let now = published.get(&package.name).cloned().unwrap_or_default();
        let version = if update || now == package.version {
            now.clone()
        } else {
            eprintln!(
                "vendor: WARNING: {} {} is no longer published in {}; it now publishes {now}",
                package.name, package.version, pinned.suite
            );
            moved.push(Moved {
                name: package.name.clone(),
                pinned: package.version.clone(),
                published: now.clone(),
            });
            now.clone()
        };
        specs.push(format!("{}={version}", package.name));
        packages.push(lock::Package {
            version,
            ..package.clone()
        });
    }
    let raw = staging.join("raw");
    let spec_refs: Vec<&str> = specs.iter().map(String::as_str).collect();
    fetch_script(
        &script,
        cache.path(),
        "extract",
        &pinned.suite,
        Some(&raw),
        &spec_refs,
    )?;

    let mut files = Vec::new();
    for package in &packages {
        let base = raw.join(&package.root);
        for take in &package.take {
            for rel in lock::find_protos(&base.join(take))? {
                let path = Path::new(take).join(rel);
                files.push(stage_file(
                    &base.join(&path),
                    &path,
                    &package.name,
                    staging,
                )?);
            }
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok((
        Lock {
            suite: pinned.suite.clone(),
            packages,
            files,
        },
        moved,
    ))
}

/// Copies the lock's files out of a local source tree.
///
/// `dir` may be laid out like Go's source path (`github.com/containerd/...`) or be a checkout of
/// the repository itself (`api/...`): each file is looked up under every suffix of its path.
fn stage_from_dir(pinned: &Lock, dir: &Path, update: bool, staging: &Path) -> Result<Lock, Error> {
    if !dir.is_dir() {
        return Err(Error::Message(format!(
            "vendor --from: {} is not a directory",
            dir.display()
        )));
    }
    let mut files = Vec::new();
    for file in &pinned.files {
        let Some(source) = locate(dir, &file.path) else {
            return Err(Error::Message(format!(
                "vendor --from: {} has no file matching {}",
                dir.display(),
                file.path
            )));
        };
        files.push(stage_file(
            &source,
            Path::new(&file.path),
            &file.package,
            staging,
        )?);
    }
    let packages = pinned
        .packages
        .iter()
        .map(|p| lock::Package {
            version: if update {
                format!("local:{}", dir.display())
            } else {
                p.version.clone()
            },
            ..p.clone()
        })
        .collect();
    Ok(Lock {
        suite: pinned.suite.clone(),
        packages,
        files,
    })
}

/// Finds `path` in `dir` by trying each suffix of it, longest first.
fn locate(dir: &Path, path: &str) -> Option<PathBuf> {
    let parts: Vec<&str> = path.split('/').collect();
    (0..parts.len())
        .map(|skip| dir.join(parts[skip..].join("/")))
        .find(|candidate| candidate.is_file())
}

/// Copies one file into the staging tree and records its hash.
fn stage_file(source: &Path, rel: &Path, package: &str, staging: &Path) -> Result<File, Error> {
    let dest = staging.join("files").join(rel);
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }
    std::fs::copy(source, &dest).map_err(|e| Error::io(source, e))?;
    Ok(File {
        path: rel.to_string_lossy().into_owned(),
        package: package.to_owned(),
        sha256: lock::sha256_file(&dest)?,
    })
}

/// Compares fetched files with the pinned ones.
fn verify(pinned: &Lock, fetched: &Lock, moved: &[Moved], lock_file: &str) -> Result<(), Error> {
    let want = lock::by_path(&pinned.files);
    let got = lock::by_path(&fetched.files);
    let mut differing: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for file in &pinned.files {
        let problem = match got.get(file.path.as_str()) {
            None => "missing".to_owned(),
            Some(hash) if *hash != file.sha256 => {
                format!("sha256 {hash}, pinned {}", file.sha256)
            }
            Some(_) => continue,
        };
        differing
            .entry(file.package.as_str())
            .or_default()
            .push(format!("{}: {problem}", file.path));
    }
    for file in &fetched.files {
        if !want.contains_key(file.path.as_str()) {
            differing
                .entry(file.package.as_str())
                .or_default()
                .push(format!("{}: not pinned", file.path));
        }
    }
    if differing.is_empty() {
        return Ok(());
    }
    let mut report = String::new();
    for (package, problems) in &differing {
        report.push_str(&format!("  {package}:\n"));
        for p in problems {
            report.push_str(&format!("    {p}\n"));
        }
    }
    let all_moved = differing
        .keys()
        .all(|name| moved.iter().any(|m| m.name == *name));
    if all_moved {
        let versions = moved
            .iter()
            .map(|m| format!("{} {} -> {}", m.name, m.pinned, m.published))
            .collect::<Vec<_>>()
            .join(", ");
        Err(Error::Unpublished(format!(
            "the pinned versions are no longer published ({versions}) and the published files \
             differ:\n{report}bump deliberately with `cargo xtask vendor --update && cargo xtask regen`"
        )))
    } else {
        Err(Error::Message(format!(
            "vendored files do not match {lock_file} for the pinned versions:\n{report}\
             this is not a version change: check the source before trusting it"
        )))
    }
}

/// Replaces `proto/upstream` with the staged files.
fn install(staging: &Path, lock: &Lock, dest: &Path) -> Result<(), Error> {
    if dest.exists() {
        std::fs::remove_dir_all(dest).map_err(|e| Error::io(dest, e))?;
    }
    for file in &lock.files {
        let from = staging.join("files").join(&file.path);
        let to = dest.join(&file.path);
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        std::fs::copy(&from, &to).map_err(|e| Error::io(&from, e))?;
    }
    Ok(())
}

/// Runs `scripts/debian-fetch.sh` and parses its "PACKAGE VERSION" lines.
fn fetch_script(
    script: &Path,
    cache: &Path,
    mode: &str,
    suite: &str,
    dest: Option<&Path>,
    args: &[&str],
) -> Result<BTreeMap<String, String>, Error> {
    let mut cmd = Command::new("bash");
    cmd.arg(script).arg(mode).arg(suite);
    if let Some(dest) = dest {
        cmd.arg(dest);
    }
    cmd.args(args).env("DEBIAN_FETCH_CACHE", cache);
    let out = cmd.output().map_err(|e| Error::io(script, e))?;
    if !out.status.success() {
        return Err(Error::Message(format!(
            "{} {mode} failed ({}):\n{}",
            script.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(p, v)| (p.to_owned(), v.trim().to_owned()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCK: &str = "proto/vendor.lock";

    fn lock_with(version: &str, hash: &str) -> Lock {
        Lock {
            suite: "sid".into(),
            packages: vec![lock::Package {
                name: "pkg".into(),
                version: version.into(),
                root: "usr/share/gocode/src".into(),
                take: vec!["a".into()],
            }],
            files: vec![File {
                path: "a/x.proto".into(),
                package: "pkg".into(),
                sha256: hash.into(),
            }],
        }
    }

    #[test]
    fn a_changed_file_of_the_pinned_version_is_an_error() {
        let err = verify(&lock_with("1", "aa"), &lock_with("1", "bb"), &[], LOCK)
            .expect_err("hash mismatch");
        assert!(matches!(err, Error::Message(_)), "{err:?}");
        assert!(
            err.to_string().contains("a/x.proto: sha256 bb, pinned aa"),
            "{err}"
        );
    }

    #[test]
    fn a_changed_file_of_a_newer_version_asks_for_a_bump() {
        let moved = [Moved {
            name: "pkg".into(),
            pinned: "1".into(),
            published: "2".into(),
        }];
        let err = verify(&lock_with("1", "aa"), &lock_with("2", "bb"), &moved, LOCK)
            .expect_err("newer version differs");
        assert!(matches!(err, Error::Unpublished(_)), "{err:?}");
        assert!(
            err.to_string().contains("cargo xtask vendor --update"),
            "{err}"
        );
    }

    #[test]
    fn same_files_of_a_newer_version_pass() {
        let moved = [Moved {
            name: "pkg".into(),
            pinned: "1".into(),
            published: "2".into(),
        }];
        verify(&lock_with("1", "aa"), &lock_with("2", "aa"), &moved, LOCK).expect("same files");
    }

    /// `--from` finds the files in a source checkout laid out as containerd's own repository
    /// (`api/...`), verifies them, and refuses a tampered one.
    #[test]
    fn from_a_source_checkout() {
        let checkout = tempfile::tempdir().expect("tempdir");
        let mut files = Vec::new();
        for (rel, path) in [
            (
                "api/types/mount.proto",
                "github.com/containerd/containerd/api/types/mount.proto",
            ),
            (
                "stats/v1/metrics.proto",
                "github.com/containerd/cgroups/v3/stats/v1/metrics.proto",
            ),
        ] {
            let dest = checkout.path().join(rel);
            std::fs::create_dir_all(dest.parent().expect("parent")).expect("mkdir");
            std::fs::write(&dest, format!("syntax = \"proto3\";\n// {rel}\n")).expect("write");
            files.push(File {
                path: path.into(),
                package: "pkg".into(),
                sha256: lock::sha256_file(&dest).expect("hash"),
            });
        }
        let pinned = Lock {
            files,
            ..lock_with("1", "unused")
        };
        let staging = tempfile::tempdir().expect("tempdir");
        let fetched =
            stage_from_dir(&pinned, checkout.path(), false, staging.path()).expect("stage");
        verify(&pinned, &fetched, &[], LOCK).expect("untouched checkout verifies");

        let victim = checkout.path().join("api/types/mount.proto");
        std::fs::write(&victim, "syntax = \"proto3\";\n").expect("tamper");
        let staging = tempfile::tempdir().expect("tempdir");
        let fetched =
            stage_from_dir(&pinned, checkout.path(), false, staging.path()).expect("stage");
        let err = verify(&pinned, &fetched, &[], LOCK).expect_err("tampered file");
        assert!(err.to_string().contains("api/types/mount.proto"), "{err}");
    }
}
