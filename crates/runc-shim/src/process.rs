//! A process of a container (its init or an exec) and the states it moves through.

use ctrd_api::containerd::v1::types::Status;
use ctrd_api::prost_types::Timestamp;
use ctrd_shim::Pid;
use tokio::sync::watch;

use crate::stdio::{Stdio, StdioHandles};

/// Where a process is in its life.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum State {
    /// Defined (an exec before `Start`), no pid yet.
    Defined,
    /// Its `Start` failed (runc could not start it): it never ran and never will, so a
    /// `Wait` on it returns at once, as containerd's CRI expects when it tidies up a failed
    /// exec (it waits for the exec before deleting it).
    StartFailed,
    /// Created by runc, not started.
    Created {
        /// Its pid.
        pid: Pid,
    },
    /// Running.
    Running {
        /// Its pid.
        pid: Pid,
    },
    /// Frozen.
    Paused {
        /// Its pid.
        pid: Pid,
    },
    /// Ended.
    Stopped {
        /// Its pid.
        pid: Pid,
        /// Exit code, or 128 + signal.
        status: u32,
        /// When it was reaped.
        at: Timestamp,
    },
}

/// An invalid transition, named for the error message.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InvalidTransition {
    /// What was asked.
    pub action: &'static str,
    /// The state it was asked in.
    pub from: State,
}

impl std::fmt::Display for InvalidTransition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "cannot {} a process that is {}",
            self.action,
            self.from.name()
        )
    }
}

impl State {
    /// containerd's status for this state.
    pub fn status(&self) -> Status {
        match self {
            State::Defined | State::StartFailed | State::Created { .. } => Status::Created,
            State::Running { .. } => Status::Running,
            State::Paused { .. } => Status::Paused,
            State::Stopped { .. } => Status::Stopped,
        }
    }

    /// The pid, once runc has given one.
    pub fn pid(&self) -> Option<Pid> {
        match *self {
            State::Defined | State::StartFailed => None,
            State::Created { pid } | State::Running { pid } | State::Paused { pid } => Some(pid),
            State::Stopped { pid, .. } => Some(pid),
        }
    }

    /// The pid of a process that has one and has not been reaped.
    pub fn live_pid(&self) -> Option<Pid> {
        self.is_live().then(|| self.pid()).flatten()
    }

    /// Its name in error messages.
    pub fn name(&self) -> &'static str {
        match self {
            State::Defined => "not started",
            State::StartFailed => "not started (its start failed)",
            State::Created { .. } => "created",
            State::Running { .. } => "running",
            State::Paused { .. } => "paused",
            State::Stopped { .. } => "stopped",
        }
    }

    /// Whether it still has a live pid.
    pub fn is_live(&self) -> bool {
        matches!(
            self,
            State::Created { .. } | State::Running { .. } | State::Paused { .. }
        )
    }
}

/// A process and the handles of its standard I/O.
#[derive(Debug)]
pub struct Process {
    /// The exec id; empty for the init process.
    pub exec_id: String,
    /// The stdio paths containerd gave.
    pub stdio: Stdio,
    /// The shim's ends of the process's stdio (dropped to close stdin, or when it is deleted).
    pub handles: StdioHandles,
    /// Its spec, for execs (JSON of an OCI `Process`).
    pub spec: Option<Vec<u8>>,
    /// Its terminal, if it has one.
    pub console: Option<crate::console::Console>,
    state: watch::Sender<State>,
}

impl Process {
    /// A new process in `state`.
    pub fn new(exec_id: String, stdio: Stdio, spec: Option<Vec<u8>>, state: State) -> Process {
        Process {
            exec_id,
            stdio,
            handles: StdioHandles::default(),
            spec,
            console: None,
            state: watch::channel(state).0,
        }
    }

    /// The current state.
    pub fn state(&self) -> State {
        *self.state.borrow()
    }

    /// Waits until the process has stopped; its exit status and time.
    pub fn exited(&self) -> watch::Receiver<State> {
        self.state.subscribe()
    }

    fn go(
        &self,
        action: &'static str,
        next: impl FnOnce(State) -> Option<State>,
    ) -> Result<State, InvalidTransition> {
        let from = self.state();
        let to = next(from).ok_or(InvalidTransition { action, from })?;
        self.state.send_replace(to);
        Ok(to)
    }

    /// runc created it.
    pub fn created(&self, pid: Pid) -> Result<State, InvalidTransition> {
        self.go("create", |s| {
            matches!(s, State::Defined).then_some(State::Created { pid })
        })
    }

    /// It started (an init after `runc start`; an exec once running).
    pub fn started(&self, pid: Pid) -> Result<State, InvalidTransition> {
        self.go("start", |s| match s {
            State::Defined | State::Created { .. } => Some(State::Running { pid }),
            _ => None,
        })
    }

    /// Its start failed; it will never run.
    pub fn start_failed(&self) -> Result<State, InvalidTransition> {
        self.go("fail to start", |s| {
            matches!(s, State::Defined).then_some(State::StartFailed)
        })
    }

    /// Whether it has ended, or will never run: what `Wait` waits for.
    pub fn is_finished(state: &State) -> bool {
        matches!(state, State::Stopped { .. } | State::StartFailed)
    }

    /// It was frozen.
    pub fn paused(&self) -> Result<State, InvalidTransition> {
        self.go("pause", |s| match s {
            State::Running { pid } => Some(State::Paused { pid }),
            _ => None,
        })
    }

    /// It was thawed.
    pub fn resumed(&self) -> Result<State, InvalidTransition> {
        self.go("resume", |s| match s {
            State::Paused { pid } => Some(State::Running { pid }),
            _ => None,
        })
    }

    /// It exited (valid from any live state, once).
    pub fn stopped(&self, status: u32, at: Timestamp) -> Result<State, InvalidTransition> {
        self.go("stop", |s| match s {
            State::Created { pid } | State::Running { pid } | State::Paused { pid } => {
                Some(State::Stopped { pid, status, at })
            }
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pid(raw: i32) -> Pid {
        Pid::from_raw(raw).expect("pid")
    }

    #[test]
    fn only_valid_transitions() {
        let p = Process::new(String::new(), Stdio::default(), None, State::Defined);
        assert!(
            p.stopped(1, Timestamp::default()).is_err(),
            "no pid to stop"
        );
        assert!(p.started(pid(1)).is_ok());
        assert!(p.created(pid(1)).is_err(), "created after running");
        assert!(p.paused().is_ok());
        assert!(p.paused().is_err(), "paused twice");
        assert!(p.resumed().is_ok());
        assert!(p.stopped(3, Timestamp::default()).is_ok());
        assert!(p.stopped(4, Timestamp::default()).is_err(), "one exit only");
        assert_eq!(p.state().status(), Status::Stopped);
        let err = p.started(pid(2)).expect_err("restart");
        assert_eq!(err.to_string(), "cannot start a process that is stopped");
    }
}
