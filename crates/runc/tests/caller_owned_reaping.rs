//! A caller that reaps every child itself (as a subreaper shim does) plugs in a
//! `ProcessMonitor`; the wrapper then never waits on runc, so no exit is stolen or lost.
//!
//! This file holds one test: its reaper collects every child of the test process.

mod common;

use std::collections::HashMap;
use std::process::{Command, ExitStatus};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::wait_for;
use ctrd_runc::{CreateOptions, ProcessMonitor, Runc, Started, Status};
use ctrd_testbed::Bundle;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::Pid;
use std::os::unix::process::ExitStatusExt;
use tokio::sync::oneshot;

/// Exits collected by one `waitpid(-1)` loop, handed to whoever registered the pid.
#[derive(Default)]
struct Reaper {
    state: Mutex<ReaperState>,
}

#[derive(Default)]
struct ReaperState {
    waiting: HashMap<i32, oneshot::Sender<ExitStatus>>,
    /// Exits of pids nobody registered (container processes, here).
    unclaimed: HashMap<i32, ExitStatus>,
}

impl Reaper {
    fn start() -> Arc<Reaper> {
        let reaper = Arc::new(Reaper::default());
        let r = reaper.clone();
        std::thread::spawn(move || {
            loop {
                match waitpid(Pid::from_raw(-1), None) {
                    Ok(WaitStatus::Exited(pid, code)) => {
                        r.deliver(pid.as_raw(), ExitStatus::from_raw(code << 8))
                    }
                    Ok(WaitStatus::Signaled(pid, sig, _)) => {
                        r.deliver(pid.as_raw(), ExitStatus::from_raw(sig as i32))
                    }
                    Ok(_) => {}
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        reaper
    }

    fn deliver(&self, pid: i32, status: ExitStatus) {
        let mut state = self.state.lock().expect("lock");
        match state.waiting.remove(&pid) {
            Some(tx) => {
                let _ = tx.send(status);
            }
            None => {
                state.unclaimed.insert(pid, status);
            }
        }
    }

    fn unclaimed(&self, pid: u32) -> Option<ExitStatus> {
        self.state
            .lock()
            .expect("lock")
            .unclaimed
            .get(&(pid as i32))
            .copied()
    }
}

impl ProcessMonitor for Reaper {
    fn start(&self, command: &mut Command) -> std::io::Result<Started> {
        // Hold the lock across spawn: the reaper cannot hand out this child's exit before the
        // pid is registered.
        let mut state = self.state.lock().expect("lock");
        let child = command.spawn()?;
        let (tx, rx) = oneshot::channel();
        let pid = child.id() as i32;
        match state.unclaimed.remove(&pid) {
            Some(status) => {
                let _ = tx.send(status);
            }
            None => {
                state.waiting.insert(pid, tx);
            }
        }
        Ok(Started { child, exit: rx })
    }
}

#[test]
fn runc_exits_come_from_the_callers_reaper() {
    let t = common::TestRunc::new();
    // Made before the reaper runs: from then on, any `Command::output` in this process would
    // have its exit stolen, which is the very race a monitor avoids.
    let bundle = Bundle::busybox(&["sh", "-c", "exit 9"]).expect("bundle");
    let reaper = Reaper::start();
    let runc = Runc::builder()
        .root(t.runc.root().expect("root"))
        .monitor(reaper.clone())
        .timeout(Duration::from_secs(30))
        .build();

    let id = "reaped";
    // Many short runc commands while the reaper collects everything.
    let pid = runc
        .create(id, bundle.path(), CreateOptions::default())
        .expect("create");
    for _ in 0..20 {
        assert_eq!(runc.state(id).expect("state").status, Status::Created);
    }
    runc.start(id).expect("start");
    wait_for(&runc, id, Status::Stopped);
    // The container's own exit went to the reaper as well, unclaimed by the wrapper.
    let mut status = None;
    for _ in 0..200 {
        status = reaper.unclaimed(pid);
        if status.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(status.and_then(|s| s.code()), Some(9));
    runc.delete(id, false).expect("delete");
    assert!(runc.state(id).expect_err("gone").is_not_found());
}
