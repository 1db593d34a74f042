//! Set-up shared by this crate's tests: a runc with a private state root, and reaping of
//! container processes (the test process is their subreaper, as a shim would be).

#![allow(dead_code)]

use std::time::{Duration, Instant};

use ctrd_runc::{Runc, Status};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::Pid;

/// A runc with its own `--root`, removed (with any container left in it) when dropped.
pub struct TestRunc {
    pub runc: Runc,
    root: tempfile::TempDir,
}

impl TestRunc {
    pub fn new() -> TestRunc {
        if let Err(e) = ctrd_testbed::require_root() {
            panic!("{e}");
        }
        // Container processes become children of this process, so tests can collect their
        // exit codes.
        nix::sys::prctl::set_child_subreaper(true).expect("become a subreaper");
        let root = tempfile::Builder::new()
            .prefix("ctrd-runc-root-")
            .tempdir()
            .expect("runc root");
        let runc = Runc::builder()
            .binary("runc")
            .root(root.path())
            .timeout(Duration::from_secs(30))
            .build();
        TestRunc { runc, root }
    }
}

impl Drop for TestRunc {
    fn drop(&mut self) {
        if let Ok(list) = self.runc.list() {
            for c in list {
                let _ = self.runc.delete(&c.id, true);
            }
        }
        let _ = self.root.path();
    }
}

/// Waits for the container process `pid` (a child of this subreaper) and returns its exit code.
pub fn exit_code(pid: u32) -> i32 {
    match waitpid(Pid::from_raw(pid as i32), None).expect("waitpid") {
        WaitStatus::Exited(_, code) => code,
        WaitStatus::Signaled(_, signal, _) => 128 + signal as i32,
        other => panic!("unexpected wait status {other:?}"),
    }
}

/// Polls until the container reaches `status`.
pub fn wait_for(runc: &Runc, id: &str, status: Status) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = runc.state(id).expect("state").status;
        if now == status {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{id} stayed {now:?}, wanted {status:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Open fds of this process, to check a failed call leaked none.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}
