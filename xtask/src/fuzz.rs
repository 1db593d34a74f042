//! `cargo xtask fuzz`: every cargo-fuzz target under `fuzz/`, seeded from the checked-in corpus
//! (`fuzz/corpus/TARGET/`), for a given time each, with a summary of executions and coverage.
//!
//! The targets build on stable Rust without a sanitizer (`cargo fuzz build -s none`): the
//! parsers are safe Rust, so a sanitizer would find nothing that panics, overflow checks and
//! debug assertions (all on in a fuzz build) do not. New inputs go to a scratch corpus, never
//! into the checked-in one; a crash is kept under `fuzz/artifacts/TARGET/` and fails the run.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::{Error, repo_root};

/// What one target's run did.
#[derive(Debug)]
pub struct Outcome {
    /// The target.
    pub target: String,
    /// Inputs executed.
    pub executions: u64,
    /// Coverage points (libFuzzer's `cov:`) reached at the end.
    pub coverage: u64,
    /// Seconds run.
    pub seconds: u64,
}

/// How to fuzz.
#[derive(Debug, Clone)]
pub struct Options {
    /// Seconds per target.
    pub seconds: u64,
    /// Only this target (all when `None`).
    pub target: Option<String>,
}

fn fuzz_dir() -> PathBuf {
    repo_root().join("fuzz")
}

fn cargo_fuzz() -> Command {
    let mut command = Command::new("cargo");
    command.arg("fuzz").current_dir(fuzz_dir());
    command
}

/// Fails clearly when cargo-fuzz is missing.
fn check_toolchain() -> Result<(), Error> {
    let found = cargo_fuzz()
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if found {
        Ok(())
    } else {
        Err(Error::Message(
            "cargo-fuzz is not installed: run `cargo install cargo-fuzz --locked` \
             (scripts/setup-testbed.sh does it)"
                .into(),
        ))
    }
}

/// The targets cargo-fuzz knows.
fn targets() -> Result<Vec<String>, Error> {
    let output = cargo_fuzz()
        .arg("list")
        .output()
        .map_err(|e| Error::Message(format!("running cargo fuzz list: {e}")))?;
    if !output.status.success() {
        return Err(Error::Message(format!(
            "cargo fuzz list failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect())
}

/// Builds every target, then runs the chosen ones for `options.seconds` each.
pub fn run(options: &Options) -> Result<Vec<Outcome>, Error> {
    check_toolchain()?;
    let all = targets()?;
    let chosen: Vec<String> = match &options.target {
        Some(target) if all.contains(target) => vec![target.clone()],
        Some(target) => {
            return Err(Error::Message(format!(
                "no fuzz target {target}; the targets are: {}",
                all.join(", ")
            )));
        }
        None => all,
    };
    println!("\n==> build the fuzz targets: cargo fuzz build -s none --release");
    let status = cargo_fuzz()
        .args(["build", "-s", "none", "--release"])
        .status()
        .map_err(|e| Error::Message(format!("running cargo fuzz build: {e}")))?;
    if !status.success() {
        return Err(Error::Message(format!(
            "building the fuzz targets failed ({status})"
        )));
    }
    let scratch = tempfile::tempdir().map_err(|e| Error::io(Path::new("/tmp"), e))?;
    let mut outcomes = Vec::new();
    let mut crashed = Vec::new();
    for target in &chosen {
        let outcome = run_one(target, options.seconds, scratch.path())?;
        match outcome {
            Ok(outcome) => outcomes.push(outcome),
            Err(message) => {
                eprintln!("{message}");
                crashed.push(target.clone());
            }
        }
    }
    println!("\nfuzz target          executions   coverage   seconds");
    for o in &outcomes {
        println!(
            "{:<20} {:>10}   {:>8}   {:>7}",
            o.target, o.executions, o.coverage, o.seconds
        );
    }
    if crashed.is_empty() {
        Ok(outcomes)
    } else {
        Err(Error::Message(format!(
            "fuzz targets failed: {} (inputs kept under fuzz/artifacts/)",
            crashed.join(", ")
        )))
    }
}

/// Runs `target` for `seconds`; an `Err` inside is a crash (with libFuzzer's report).
fn run_one(target: &str, seconds: u64, scratch: &Path) -> Result<Result<Outcome, String>, Error> {
    let corpus = scratch.join(target);
    std::fs::create_dir_all(&corpus).map_err(|e| Error::io(&corpus, e))?;
    let seeds = fuzz_dir().join("corpus").join(target);
    println!("\n==> fuzz {target} for {seconds} s");
    let output = cargo_fuzz()
        .args(["run", "-s", "none", "--release", target])
        .arg(&corpus)
        .arg(&seeds)
        .arg("--")
        .arg(format!("-max_total_time={seconds}"))
        .args([
            "-timeout=10",
            "-rss_limit_mb=2048",
            "-max_len=1048576",
            "-print_final_stats=1",
        ])
        .output()
        .map_err(|e| Error::Message(format!("running cargo fuzz run {target}: {e}")))?;
    let log = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Ok(Err(format!(
            "fuzz target {target} failed ({}):\n{}",
            output.status,
            tail.join("\n")
        )));
    }
    let executions = stat(&log, "stat::number_of_executed_units:").unwrap_or(0);
    let coverage = log
        .lines()
        .rev()
        .find_map(|line| {
            let rest = line.split("cov: ").nth(1)?;
            rest.split_whitespace().next()?.parse().ok()
        })
        .unwrap_or(0);
    println!("{target}: {executions} executions, coverage {coverage}");
    Ok(Ok(Outcome {
        target: target.to_owned(),
        executions,
        coverage,
        seconds,
    }))
}

fn stat(log: &str, key: &str) -> Option<u64> {
    log.lines()
        .find_map(|line| line.strip_prefix(key)?.trim().parse().ok())
}
