//! Set-up shared by this crate's tests: the example shim installed under its runtime name.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// The runtime name the example shim answers to.
pub const RUNTIME: &str = "io.containerd.chroot.v2";

/// A folder holding `containerd-shim-chroot-v2`, the example shim (built by `cargo test`).
pub struct ShimBin {
    pub dir: tempfile::TempDir,
}

impl ShimBin {
    pub fn new() -> ShimBin {
        let exe = std::env::current_exe().expect("test binary");
        let example = exe
            .parent()
            .and_then(|deps| deps.parent())
            .map(|profile| profile.join("examples/chroot_shim"))
            .expect("target folder");
        assert!(
            example.is_file(),
            "{} is missing: run the tests with `cargo test` (which builds examples)",
            example.display()
        );
        let dir = tempfile::Builder::new()
            .prefix("ctrd-shimbin-")
            .tempdir()
            .expect("tempdir");
        std::os::unix::fs::symlink(&example, dir.path().join("containerd-shim-chroot-v2"))
            .expect("link");
        ShimBin { dir }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().join("containerd-shim-chroot-v2")
    }
}

/// A private daemon that finds the example shim, and a busybox rootfs for its containers.
pub struct ExampleBed {
    /// The daemon (dropped first: it stops its shims).
    pub containerd: ctrd_testbed::Containerd,
    /// The rootfs to run.
    pub rootfs: ctrd_testbed::Rootfs,
    /// The folder holding the example shim.
    pub bin: ShimBin,
}

impl ExampleBed {
    pub fn start(daemon: ctrd_testbed::Daemon) -> ExampleBed {
        let bin = ShimBin::new();
        let containerd = ctrd_testbed::Containerd::start_with_path(daemon, &[bin.dir.path()])
            .unwrap_or_else(|e| panic!("{e}"));
        let rootfs = ctrd_testbed::Rootfs::busybox().expect("rootfs");
        ExampleBed {
            containerd,
            rootfs,
            bin,
        }
    }
}

/// Pids of running example shims whose command line contains `needle`.
pub fn shims(needle: &str) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .expect("proc")
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let pid: i32 = e.file_name().to_str()?.parse().ok()?;
            let cmd = std::fs::read(e.path().join("cmdline")).ok()?;
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            let zombie = stat.rsplit_once(')')?.1.trim_start().starts_with('Z');
            (cmd.contains("chroot") && cmd.contains(needle) && !zombie).then_some(pid)
        })
        .collect()
}

/// Polls `check` for up to 10 s.
pub fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs a command and returns its stdout, failing the test with its stderr otherwise.
pub fn output(mut command: Command) -> String {
    let out = command.output().expect("run");
    assert!(
        out.status.success(),
        "{command:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
