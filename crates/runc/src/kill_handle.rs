//! Killing a runc that outlives its timeout without ever hitting another process.
//!
//! A pid names a process only until it is reaped; after that the kernel may give the number to
//! a new process, and a `kill(pid)` meant for runc would reach it. Who reaps runc differs: the
//! blocking executor waits on its child itself (and can hold off with `WNOWAIT`), tokio reaps
//! inside `Child::wait`, and a caller's [`ProcessMonitor`](crate::ProcessMonitor) reaps
//! whenever its own loop runs, which the wrapper cannot hold off at all.
//!
//! So both executors take a pidfd right after spawning, while the child is certainly not
//! reaped: either the wrapper itself waits on it, or the monitor registered the pid under the
//! lock its reaping loop delivers under, and runc has not had the time to exit, be reaped and
//! have its number reused within that gap. A signal sent through the pidfd reaches that very
//! process or, once it is gone, nobody (`ESRCH`).

use std::os::fd::OwnedFd;

use rustix::process::{Pid, PidfdFlags, Signal, kill_process, pidfd_open, pidfd_send_signal};

/// Who reaps the spawned process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reaper {
    /// The executor itself, and only after it is done with the handle.
    Executor,
    /// A process monitor, at any time.
    Monitor,
}

/// A spawned runc, to be killed at its timeout.
#[derive(Debug)]
pub(crate) enum KillHandle {
    /// Through a pidfd: never reaches another process.
    Pidfd(OwnedFd),
    /// By pid, for a child only the executor reaps, on kernels without pidfds (before 5.3).
    Pid(Pid),
    /// Nothing can be killed safely: the timeout only stops the waiting.
    None,
}

impl KillHandle {
    /// Opens the handle of the just-spawned child `pid`.
    pub(crate) fn open(pid: u32, reaper: Reaper) -> KillHandle {
        let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) else {
            return KillHandle::None;
        };
        match pidfd_open(pid, PidfdFlags::empty()) {
            Ok(fd) => KillHandle::Pidfd(fd),
            Err(_) if reaper == Reaper::Executor => KillHandle::Pid(pid),
            Err(_) => KillHandle::None,
        }
    }

    /// Sends SIGKILL to the process if it still exists; whether the signal was delivered.
    pub(crate) fn kill(&self) -> bool {
        match self {
            KillHandle::Pidfd(fd) => pidfd_send_signal(fd, Signal::KILL).is_ok(),
            KillHandle::Pid(pid) => kill_process(*pid, Signal::KILL).is_ok(),
            KillHandle::None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{KillHandle, Reaper};

    #[test]
    fn a_reaped_process_is_never_signalled() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("sleep");
        let handle = KillHandle::open(child.id(), Reaper::Monitor);
        assert!(
            matches!(handle, KillHandle::Pidfd(_)),
            "this kernel has pidfds"
        );
        assert!(handle.kill(), "a live process is killed");
        child.wait().expect("reaped");
        // The pid is free now and may be reused; the handle still names the old process.
        assert!(!handle.kill(), "a reaped process is not signalled again");
    }
}
