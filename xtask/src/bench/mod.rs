//! `cargo xtask bench`: our runc shim against Debian's Go shim, with plain `runc run` as the
//! floor, measured side by side in one interleaved run on private containerd daemons.
//!
//! Figures: start latency (`ctr run --rm … /bin/true`), exec latency (`ctr task exec …
//! /bin/true`), Stats latency and shim CPU per Stats call (also against our shim running runc
//! per call), idle PSS/RSS/threads per shim with 10 and 50 containers, stdout throughput
//! (1 GiB into a FIFO the benchmark reads), 50 concurrent starts, and binary size. Results print
//! as a table with ratios to the Go shim and are written as JSON.
//!
//! Each latency is also split, in the same run, into what no runc shim can avoid: `ctr` and
//! containerd's own work (the same call through our chroot example shim, which runs no runc)
//! and runc's (the runc commands a shim must run, timed directly on containerd's own spec). What
//! is left is the shim's own share.
//!
//! One module per figure ([`latency`], [`stats`], [`idle`], [`throughput`], [`concurrent`]), the shims
//! under test in [`subject`], and the typed [`results`](results::Results).

mod call_log;
mod client;
mod concurrent;
mod idle;
mod kubelet;
mod latency;
mod log_driver;
mod pod_profile;
mod pull_profile;
mod results;
mod snapshotter;
mod stat_profile;
mod stats;
mod subject;
mod throughput;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ctrd_testbed::{Containerd, Daemon, Rootfs};
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};

use crate::{Error, repo_root};
use results::{Bytes, Pair, Results};
use subject::{FLOOR_RUNTIME, RUNC_RUNTIME, Subject, ctr_run};

/// Options of `cargo xtask bench`.
#[derive(Debug, Clone)]
pub struct Options {
    /// Samples for the latency figures.
    pub runs: usize,
    /// Which containerd to run.
    pub daemon: Daemon,
    /// Skip the 1 GiB throughput figure.
    pub quick: bool,
    /// Only these groups of figures (all when empty): see [`GROUPS`].
    pub only: Vec<String>,
}

/// The groups of figures `--only` selects from.
///
/// `shim` holds every shim figure against the Go shim, Stats included; `stats` alone measures
/// only the Stats figures (a quick check after a change to Stats).
pub const GROUPS: &[&str] = &[
    "shim",
    "stats",
    "log-driver",
    "snapshotter",
    "kubelet",
    "client",
];

impl Options {
    fn wants(&self, group: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|g| g == group)
    }

    /// The smoke run `cargo xtask test` makes (3 samples): small sizes everywhere.
    fn smoke(&self) -> bool {
        self.quick || self.runs <= 3
    }
}

/// Set by SIGINT or SIGTERM: the run stops before its next command, and its daemons, shims and
/// containers are cleaned up as they drop (an unhandled signal would leave them running).
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_interrupt(_: nix::libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Routes SIGINT and SIGTERM to [`INTERRUPTED`].
fn catch_interrupts() -> Result<(), Error> {
    let action = SigAction::new(
        SigHandler::Handler(on_interrupt),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for signal in [Signal::SIGINT, Signal::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe; children
        // get the default action back when they exec.
        unsafe { sigaction(signal, &action) }
            .map_err(|e| Error::Message(format!("installing a {signal} handler: {e}")))?;
    }
    Ok(())
}

/// Fails once the run was interrupted.
fn go_on() -> Result<(), Error> {
    if INTERRUPTED.load(Ordering::SeqCst) {
        Err(Error::Message("bench: interrupted; cleaning up".into()))
    } else {
        Ok(())
    }
}

/// Which subject goes first in iteration `i`: alternating, so neither always runs right after
/// the other's clean-up.
fn order(i: usize) -> [usize; 2] {
    if i.is_multiple_of(2) { [0, 1] } else { [1, 0] }
}

/// The median of `samples`; NaN for none.
fn median(mut samples: Vec<f64>) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    samples.sort_by(|a, b| a.total_cmp(b));
    samples[samples.len() / 2]
}

/// Milliseconds, for the tables.
fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Runs the benchmark and prints and writes its results.
pub fn run(opts: &Options) -> Result<(), Error> {
    if let Some(unknown) = opts.only.iter().find(|g| !GROUPS.contains(&g.as_str())) {
        return Err(Error::Message(format!(
            "bench: unknown group {unknown:?}: use {}",
            GROUPS.join(", ")
        )));
    }
    catch_interrupts()?;
    crate::suite::setup_testbed()?;
    let shim = crate::suite::build_release_shim()?;
    let mut missing = Vec::new();
    if opts.wants("shim") {
        missing = shim_figures(opts, &shim)?;
    } else if opts.wants("stats") {
        stats_figures(opts, &shim)?;
    }
    if opts.wants("log-driver") {
        log_driver::run(opts.smoke())?;
    }
    if opts.wants("snapshotter") {
        snapshotter::run(opts.runs, opts.daemon)?;
    }
    if opts.wants("client") {
        client::run(opts.runs, opts.daemon, opts.smoke())?;
    }
    if opts.wants("kubelet") {
        let size = if opts.smoke() {
            kubelet::Size::SMOKE
        } else {
            kubelet::Size::FULL
        };
        kubelet::run(opts.daemon, &shim, size)?;
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(Error::Message(format!(
            "bench: figures not measured: {}",
            missing.join(", ")
        )))
    }
}

/// The shim figures against the Go shim and their table; the figures it could not measure.
fn shim_figures(opts: &Options, shim: &Path) -> Result<Vec<String>, Error> {
    let floor_shim = crate::suite::build_release_example("ctrd-shim", "chroot_shim")?;
    let shim_dir = tempfile::Builder::new()
        .prefix("ctrd-bench-")
        .tempdir()
        .map_err(|e| Error::io(Path::new("tempdir"), e))?;
    for (binary, name) in [
        (&shim.to_path_buf(), "containerd-shim-runc-v2"),
        (&floor_shim, "containerd-shim-chroot-v2"),
    ] {
        std::os::unix::fs::symlink(binary, shim_dir.path().join(name))
            .map_err(|e| Error::io(binary, e))?;
    }
    let daemon = |path: &[&Path]| {
        Containerd::start_with_path(opts.daemon, path).map_err(|e| Error::Message(e.to_string()))
    };
    let (ours_daemon, go_daemon) = (daemon(&[shim_dir.path()])?, daemon(&[])?);
    let subject = |name, containerd| Subject {
        name,
        containerd,
        ns: format!("bench-{name}"),
    };
    let ours = subject("ours", &ours_daemon);
    let go = subject("go", &go_daemon);
    // Our daemon also finds the chroot example shim: the same calls with no runc behind them.
    let floor = subject("floor", &ours_daemon);
    let subjects = [&ours, &go];
    let rootfs = Rootfs::busybox().map_err(|e| Error::Message(e.to_string()))?;
    let rootfs = rootfs.path().display().to_string();
    let runc_root = tempfile::tempdir().map_err(|e| Error::io(Path::new("tempdir"), e))?;
    let _runc_cgroups = latency::RuncStepsCgroups;
    println!(
        "bench: containerd {} ; {} samples per latency figure",
        opts.daemon.version(),
        opts.runs
    );

    // Running targets: one per shim for the exec figures, and one through the no-runc floor
    // shim; the runc shim's bundle also gives containerd's own spec for the runc figures.
    for s in subjects {
        s.ok(&ctr_run(RUNC_RUNTIME, &rootfs, "exec-target", true))?;
    }
    floor.ok(&ctr_run(FLOOR_RUNTIME, &rootfs, "exec-target", true))?;
    let steps_bundle = latency::containerd_spec_bundle(&ours, "exec-target", &rootfs)?;
    let (start_ms, start_floor_ms) = latency::start(
        subjects,
        &floor,
        &rootfs,
        opts.runs,
        runc_root.path(),
        &steps_bundle,
    )?;
    let (exec_ms, exec_floor_ms) = latency::exec(subjects, &floor, opts.runs)?;
    for s in subjects {
        s.remove_all(&["exec-target".to_owned()]);
    }
    floor.remove_all(&["exec-target".to_owned()]);

    let stats = stats::measure(subjects, opts.daemon, shim_dir.path(), &rootfs, opts.quick)?;

    let idle = idle::measure(subjects, &rootfs)?;
    let stdout_mib_s = if opts.quick {
        Pair::unmeasured()
    } else {
        throughput::measure(subjects, &rootfs)?
    };
    let concurrent_50_ms = concurrent::measure(subjects, &rootfs)?;

    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let results = Results {
        daemon: opts.daemon.version(),
        runs: opts.runs,
        start_ms,
        start_floor_ms,
        exec_ms,
        exec_floor_ms,
        stats_ms: stats.latency_ms,
        stats_cpu_us: stats.cpu_us,
        stats_get_ms: stats.get_ms,
        idle,
        stdout_mib_s,
        concurrent_50_ms,
        binary_bytes: Bytes {
            ours: size(shim),
            go: size(&opts.daemon.bin_dir().join("containerd-shim-runc-v2")),
        },
    };
    results.print();
    let out = repo_root().join("target/bench");
    std::fs::create_dir_all(&out).map_err(|e| Error::io(&out, e))?;
    let file = out.join("results.json");
    let json = serde_json::to_string_pretty(&results)
        .map_err(|e| Error::Message(format!("bench: results as JSON: {e}")))?;
    std::fs::write(&file, json).map_err(|e| Error::io(&file, e))?;
    println!("\nbench: results written to {}", file.display());
    let mut missing = results.unmeasured();
    missing.retain(|figure| !(opts.quick && figure.starts_with("stdout_mib_s")));
    Ok(missing)
}

/// `--only stats`: the Stats figures alone, printed.
fn stats_figures(opts: &Options, shim: &Path) -> Result<(), Error> {
    let shim_dir = tempfile::Builder::new()
        .prefix("ctrd-bench-")
        .tempdir()
        .map_err(|e| Error::io(Path::new("tempdir"), e))?;
    std::os::unix::fs::symlink(shim, shim_dir.path().join("containerd-shim-runc-v2"))
        .map_err(|e| Error::io(shim, e))?;
    let daemon = |path: &[&Path]| {
        Containerd::start_with_path(opts.daemon, path).map_err(|e| Error::Message(e.to_string()))
    };
    let (ours_daemon, go_daemon) = (daemon(&[shim_dir.path()])?, daemon(&[])?);
    let ours = Subject {
        name: "ours",
        containerd: &ours_daemon,
        ns: "bench-ours".into(),
    };
    let go = Subject {
        name: "go",
        containerd: &go_daemon,
        ns: "bench-go".into(),
    };
    let rootfs = Rootfs::busybox().map_err(|e| Error::Message(e.to_string()))?;
    let rootfs = rootfs.path().display().to_string();
    println!("bench: Stats only, containerd {}", opts.daemon.version());
    let stats = stats::measure(
        [&ours, &go],
        opts.daemon,
        shim_dir.path(),
        &rootfs,
        opts.quick,
    )?;
    results::print_stats(stats.latency_ms, stats.cpu_us, stats.get_ms);
    Ok(())
}
