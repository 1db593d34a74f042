//! Binaries of other workspace packages, for tests that need them (cargo only hands a test
//! the binaries of its own package).

use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::Error;

/// Builds binary `bin` of workspace package `package` with the running test's profile and
/// target folder, and returns its path. Cargo's own build lock makes concurrent calls safe;
/// a binary already up to date costs a no-op build.
pub fn workspace_bin(package: &str, bin: &str) -> Result<PathBuf, Error> {
    // A test runs from TARGET/PROFILE/deps/NAME-HASH.
    let exe = std::env::current_exe().map_err(|e| Error::io("the running test", e))?;
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(PathBuf::from)
        .ok_or_else(|| Error::Build {
            what: format!("{package}'s {bin}"),
            reason: format!("cannot tell the target folder from {}", exe.display()),
        })?;
    let target_dir = profile_dir
        .parent()
        .map(PathBuf::from)
        .unwrap_or_else(|| profile_dir.clone());
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .args([
            "build",
            "--quiet",
            "-p",
            package,
            "--bin",
            bin,
            "--target-dir",
        ])
        .arg(&target_dir)
        .current_dir(crate::repo_root())
        .stdin(Stdio::null());
    if profile_dir.file_name().is_some_and(|p| p == "release") {
        command.arg("--release");
    }
    let out = command.output().map_err(|e| Error::io("cargo", e))?;
    if !out.status.success() {
        return Err(Error::Build {
            what: format!("{package}'s {bin}"),
            reason: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    let path = profile_dir.join(bin);
    if path.is_file() {
        Ok(path)
    } else {
        Err(Error::Missing {
            what: format!("{package}'s {bin}"),
            path,
        })
    }
}
