//! The log driver's end-to-end bed: a private containerd whose `io.containerd.runc.v2` is our
//! shim or Debian's Go shim, a busybox rootfs, and `ctr run --log-uri` with a deadline.

#![allow(dead_code)]

pub mod process;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use ctrd_logging::Stream;
use ctrd_logging::reader::{Format, LogReader};
use ctrd_testbed::{Containerd, Daemon, Rootfs, cleanup};

/// Which shim containerd runs for `io.containerd.runc.v2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shim {
    /// Ours (crates/runc-shim), built for the test.
    Ours,
    /// Debian's Go shim, next to the daemon.
    Go,
}

pub struct Bed {
    pub ns: String,
    pub daemon: Daemon,
    pub shim: Shim,
    pub rootfs: Rootfs,
    containerd: Containerd,
    _bin: Option<ctrd_testbed::OurShim>,
}

impl Bed {
    pub fn new(daemon: Daemon, shim: Shim) -> Bed {
        let bin = (shim == Shim::Ours)
            .then(|| ctrd_testbed::OurShim::build().unwrap_or_else(|e| panic!("{e}")));
        let extra: Vec<&Path> = bin.iter().map(|s| s.path()).collect();
        let containerd =
            Containerd::start_with_path(daemon, &extra).unwrap_or_else(|e| panic!("{e}"));
        Bed {
            ns: format!("log-{}-{shim:?}", daemon.version())
                .replace('.', "-")
                .to_lowercase(),
            daemon,
            shim,
            rootfs: Rootfs::busybox().unwrap_or_else(|e| panic!("{e}")),
            containerd,
            _bin: bin,
        }
    }

    pub fn containerd(&self) -> &Containerd {
        &self.containerd
    }

    pub fn ctr(&self, args: &[&str]) -> Command {
        let mut c = self.containerd.ctr().unwrap_or_else(|e| panic!("{e}"));
        c.args(["--namespace", &self.ns]).args(args);
        c
    }

    /// `ctr run --rm --log-uri=URI` of `script` under `sh -c`, killed (and failing the test)
    /// if it takes longer than `limit`.
    pub fn run_logged(&self, id: &str, uri: &str, script: &str, limit: Duration) -> Output {
        let rootfs = self.rootfs.path().display().to_string();
        let log_uri = format!("--log-uri={uri}");
        let mut child = self
            .ctr(&[
                "run", "--rm", &log_uri, "--rootfs", &rootfs, id, "/bin/sh", "-c", script,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ctr run");
        let deadline = Instant::now() + limit;
        loop {
            if child.try_wait().expect("wait").is_some() {
                return child.wait_with_output().expect("ctr output");
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let out = child.wait_with_output().expect("ctr output");
                panic!(
                    "ctr run {id} hung for {limit:?} ({:?} on {}): {}",
                    self.shim,
                    self.daemon.version(),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Removes what is left of container `id` after a failed run.
    pub fn forget(&self, id: &str) {
        let _ = self.ctr(&["tasks", "kill", "-s", "SIGKILL", id]).output();
        let _ = self.ctr(&["tasks", "delete", "-f", id]).output();
        let _ = self.ctr(&["containers", "rm", id]).output();
    }
}

/// Live processes whose environment says they work for namespace `ns`: log drivers get
/// `CONTAINER_NAMESPACE`, and every process they start inherits it.
pub fn drivers_of(ns: &str) -> Vec<nix::unistd::Pid> {
    let wanted = format!("CONTAINER_NAMESPACE={ns}");
    std::fs::read_dir("/proc")
        .map(|dir| {
            dir.filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
                .map(nix::unistd::Pid::from_raw)
                .filter(|pid| {
                    std::fs::read(format!("/proc/{pid}/environ"))
                        .is_ok_and(|env| env.split(|b| *b == 0).any(|v| v == wanted.as_bytes()))
                })
                .filter(|pid| cleanup::alive(*pid))
                .collect()
        })
        .unwrap_or_default()
}

/// Waits until no process mentions `needle` (the drivers of a run end once the container's
/// pipes close); fails if one is still there after `limit`.
pub fn wait_gone(needle: &str, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let left: Vec<_> = cleanup::processes_mentioning(needle)
            .into_iter()
            .filter(|p| cleanup::alive(*p))
            .collect();
        if left.is_empty() {
            return;
        }
        if Instant::now() > deadline {
            let lines: Vec<String> = left
                .iter()
                .map(|p| {
                    std::fs::read(format!("/proc/{p}/cmdline"))
                        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
                        .unwrap_or_default()
                })
                .collect();
            cleanup::kill_all(&left);
            panic!("processes left running after {limit:?}: {lines:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The stdout and stderr bytes a log holds, rotated files included.
pub fn read_back(path: &Path, format: Format) -> (Vec<u8>, Vec<u8>) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    for entry in LogReader::open(path, format).unwrap_or_else(|e| panic!("{e}")) {
        let entry = entry.unwrap_or_else(|e| panic!("{e}"));
        entry.append_to(if entry.stream == Stream::Stdout {
            &mut out
        } else {
            &mut err
        });
    }
    (out, err)
}

/// Rotated files of `path` (`path.N` or `path.N.gz`).
pub fn rotations(path: &Path) -> usize {
    (1..)
        .take_while(|&i| {
            ctrd_logging::rotate::rotated_name(path, i, false).exists()
                || ctrd_logging::rotate::rotated_name(path, i, true).exists()
        })
        .count()
}

/// The driver binary under test.
pub fn driver() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ctrd-log-driver"))
}
