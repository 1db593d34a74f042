//! `cargo xtask test` and `cargo xtask demo`: the README's two commands.

use std::process::Command;

use crate::{Error, repo_root, vendor};

/// Runs a command from the repository root, failing if it fails.
fn step(what: &str, program: &str, args: &[&str], env: &[(&str, &str)]) -> Result<(), Error> {
    println!("\n==> {what}: {program} {}", args.join(" "));
    let status = Command::new(program)
        .args(args)
        .envs(env.iter().copied())
        .current_dir(repo_root())
        .status()
        .map_err(|e| Error::Message(format!("running {program}: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(Error::Message(format!("{what} failed ({status})")))
    }
}

/// Removes what earlier `cargo package` runs left of our crates: sources unpacked from the
/// temporary local registry and what was built from them.
///
/// `cargo package --workspace` verifies a crate that depends on another workspace crate
/// through a registry under `target/package/tmp-registry`, and unpacks that dependency into
/// `$CARGO_HOME/registry/src/<hash of the registry's path>/`. The version never changes
/// (0.1.0) and cargo takes registry crates as immutable, so it finds the directory, and the
/// build of it, from an earlier run on the same path and uses those stale copies: the check
/// then fails on code that no longer exists. Local registries are the ones whose directory
/// name starts with `-` (no host name); only our `ctrd-*` crates are removed from them and
/// from `target/debug`, where the verification builds (our crates are built again; their
/// dependencies stay built; on a fresh clone there is nothing to remove).
fn forget_earlier_packages() -> Result<(), Error> {
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".to_owned());
    let built = repo_root().join(target).join("debug");
    for (dir, prefixes) in [
        (built.join(".fingerprint"), &["ctrd-"][..]),
        (built.join("build"), &["ctrd-"][..]),
        (built.join("deps"), &["ctrd_", "libctrd_", "ctrd-"][..]),
    ] {
        remove_entries(&dir, prefixes)?;
    }
    let home = match std::env::var_os("CARGO_HOME") {
        Some(home) => std::path::PathBuf::from(home),
        None => match std::env::var_os("HOME") {
            Some(home) => std::path::PathBuf::from(home).join(".cargo"),
            None => return Ok(()),
        },
    };
    for kind in ["src", "cache"] {
        let Ok(registries) = std::fs::read_dir(home.join("registry").join(kind)) else {
            continue;
        };
        for registry in registries.flatten() {
            if !registry.file_name().to_string_lossy().starts_with('-') {
                continue;
            }
            remove_entries(&registry.path(), &["ctrd-"])?;
        }
    }
    Ok(())
}

/// Removes the entries of `dir` whose names start with one of `prefixes` (nothing if `dir`
/// does not exist).
fn remove_entries(dir: &std::path::Path, prefixes: &[&str]) -> Result<(), Error> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !prefixes.iter().any(|p| name.starts_with(p)) {
            continue;
        }
        let path = entry.path();
        let removed = if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        removed.map_err(|e| {
            Error::Message(format!("removing stale package {}: {e}", path.display()))
        })?;
    }
    Ok(())
}

/// Seconds each fuzz target runs in `cargo xtask test`.
const FUZZ_SECONDS: u64 = 5;

/// Installs the test bed, then runs every check and test.
pub fn test(with_1_7: bool) -> Result<(), Error> {
    let setup: &[&str] = if with_1_7 {
        &["scripts/setup-testbed.sh", "--with-1.7"]
    } else {
        &["scripts/setup-testbed.sh"]
    };
    step("set up the test bed", "bash", setup, &[])?;

    // The network half of the codegen drift check: the checked-in descriptor sets are what the
    // pinned protos compile to. When the pinned versions can no longer be fetched there is
    // nothing to compare against; the offline half (generated code vs descriptor sets) runs in
    // the tests below either way.
    println!("\n==> vendor the pinned protos and check the descriptor sets");
    match vendor::run(&vendor::Options {
        check: true,
        ..vendor::Options::default()
    }) {
        Ok(()) => {}
        Err(Error::Unpublished(message)) => println!(
            "\nWARNING: the pinned protos can no longer be fetched, so the descriptor sets were \
             not compared with them (generated code is still checked against the descriptor \
             sets). {message}"
        ),
        Err(e) => return Err(e),
    }

    let mut env = Vec::new();
    step("formatting", "cargo", &["fmt", "--all", "--check"], &[])?;
    step(
        "lints",
        "cargo",
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--all-features",
            "--locked",
            "--",
            "-D",
            "warnings",
        ],
        &[],
    )?;
    step(
        "documentation builds without warnings",
        "cargo",
        &[
            "doc",
            "--workspace",
            "--no-deps",
            "--all-features",
            "--locked",
        ],
        &[("RUSTDOCFLAGS", "-D warnings")],
    )?;
    // Every library crate is publishable: each packages and its package builds on its own.
    // xtask is left out: it is a developer tool (publish = false) that depends on the test bed,
    // which is test-only and unpublished, so cargo cannot package it.
    forget_earlier_packages()?;
    step(
        "every library crate packages",
        "cargo",
        &[
            "package",
            "--workspace",
            "--exclude",
            "xtask",
            "--locked",
            "--allow-dirty",
        ],
        &[],
    )?;
    let mut args = vec!["test", "--workspace", "--all-features", "--locked"];
    if with_1_7 {
        args.extend(["--", "--include-ignored"]);
        env.push(("CTRD_TEST_DAEMONS", "1.6,2.1,2.4,1.7"));
    }
    // The benchmark's mechanics, on this fresh machine: every figure must be measured. Its
    // numbers are printed, never judged here (benchmarks, not timed tests, speak for speed).
    println!("\n==> benchmark mechanics: cargo xtask bench --runs 3");
    crate::bench::run(&crate::bench::Options {
        runs: 3,
        daemon: ctrd_testbed::Daemon::Bookworm,
        quick: false,
        only: Vec::new(),
    })?;
    step("tests", "cargo", &args, &env)?;
    // Every fuzz target for a few seconds, from the checked-in seeds: a parser that now
    // panics on a seed or a quick mutation of one fails here.
    step(
        "fuzz targets are formatted",
        "cargo",
        &["fmt", "--manifest-path", "fuzz/Cargo.toml", "--check"],
        &[],
    )?;
    step(
        "fuzz target lints",
        "cargo",
        &[
            "clippy",
            "--manifest-path",
            "fuzz/Cargo.toml",
            "--bins",
            "--",
            "-D",
            "warnings",
        ],
        &[],
    )?;
    crate::fuzz::run(&crate::fuzz::Options {
        seconds: FUZZ_SECONDS,
        target: None,
    })?;
    println!("\nxtask test: everything passed");
    Ok(())
}

/// Runs `scripts/setup-testbed.sh`.
pub fn setup_testbed() -> Result<(), Error> {
    step(
        "set up the test bed",
        "bash",
        &["scripts/setup-testbed.sh"],
        &[],
    )
}

/// Builds `containerd-shim-runc-v2` in release mode and returns its path.
pub fn build_release_shim() -> Result<std::path::PathBuf, Error> {
    build_release("the runc shim", &["-p", "ctrd-runc-shim", "--bins"])?;
    Ok(release_dir().join("containerd-shim-runc-v2"))
}

/// Builds binary `name` of `package` in release mode and returns its path.
pub fn build_release_bin(package: &str, name: &str) -> Result<std::path::PathBuf, Error> {
    build_release(name, &["-p", package, "--bin", name])?;
    Ok(release_dir().join(name))
}

/// Builds example `name` of `package` in release mode and returns its path.
pub fn build_release_example(package: &str, name: &str) -> Result<std::path::PathBuf, Error> {
    build_release_example_with(package, name, &[])
}

/// Builds example `name` of `package` in release mode with the package's `features`, and
/// returns its path.
pub fn build_release_example_with(
    package: &str,
    name: &str,
    features: &[&str],
) -> Result<std::path::PathBuf, Error> {
    let features = features.join(",");
    let mut selection = vec!["-p", package, "--example", name];
    if !features.is_empty() {
        selection.extend(["--features", &features]);
    }
    build_release(&format!("the {name} example"), &selection)?;
    Ok(release_dir().join("examples").join(name))
}

/// `cargo build --release` of `selection` (package and target flags).
fn build_release(what: &str, selection: &[&str]) -> Result<(), Error> {
    let mut args = vec!["build", "--quiet", "--locked", "--release"];
    args.extend(selection);
    step(&format!("build {what}"), "cargo", &args, &[])
}

/// The release profile's output folder.
fn release_dir() -> std::path::PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".to_owned());
    repo_root().join(target).join("release")
}

/// Installs the test bed, builds our runc shim, then runs the main job: a container under a
/// private containerd, through our shim.
pub fn demo() -> Result<(), Error> {
    setup_testbed()?;
    let shim = build_release_shim()?;
    let shim = shim.to_string_lossy().into_owned();
    step(
        "run a container under a private containerd through our shim",
        "cargo",
        &[
            "run",
            "--quiet",
            "--locked",
            "-p",
            "ctrd-runc-shim",
            "--example",
            "demo",
        ],
        &[("CTRD_RUNC_SHIM", shim.as_str())],
    )
}
