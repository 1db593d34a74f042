//! Reaping every child as a subreaper, with exit subscriptions that cannot lose an exit.
//!
//! A shim is the parent (by `PR_SET_CHILD_SUBREAPER`) of its containers' processes, so it
//! must collect every exit. One loop reaps with `waitpid(-1)` on each `SIGCHLD` and hands each
//! exit to:
//! - the caller that spawned the process through [`Reaper::spawn`] (runc, publish binary), by
//!   pid, registered under the same lock the loop takes, so the exit can never arrive first;
//! - otherwise every current [`ExitSubscription`], each of which buffers every exit since it
//!   was made. Subscribe before starting a process and its exit cannot be lost, however early
//!   it comes.

use std::collections::HashMap;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, ExitStatus};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::SystemTime;

use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use tokio::sync::{mpsc, oneshot};

use crate::{Error, Pid};

/// A process that ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit {
    /// Its pid.
    pub pid: Pid,
    /// Its exit code, or 128 + the signal that killed it (as containerd reports it).
    pub status: u32,
    /// When it was reaped.
    pub at: SystemTime,
}

#[derive(Default)]
struct State {
    next_id: u64,
    subscribers: Vec<(u64, mpsc::UnboundedSender<Exit>)>,
    spawned: HashMap<Pid, oneshot::Sender<ExitStatus>>,
}

/// The shim's reaper; cheap to clone.
#[derive(Clone, Default)]
pub struct Reaper {
    state: Arc<Mutex<State>>,
}

impl std::fmt::Debug for Reaper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reaper").finish_non_exhaustive()
    }
}

impl Reaper {
    /// Makes this process a subreaper and starts reaping on `SIGCHLD` (needs a tokio runtime).
    pub fn start() -> Result<Reaper, Error> {
        nix::sys::prctl::set_child_subreaper(true)?;
        let reaper = Reaper::default();
        let mut signals = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::child())
            .map_err(|e| Error::io("listening for SIGCHLD", e))?;
        let looped = reaper.clone();
        tokio::spawn(async move {
            looped.reap();
            while signals.recv().await.is_some() {
                looped.reap();
            }
        });
        Ok(reaper)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves the maps consistent; keep going.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Collects every exited child and delivers the exits.
    pub fn reap(&self) {
        loop {
            let (pid, raw, status) = match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => (pid, code << 8, code as u32),
                Ok(WaitStatus::Signaled(pid, signal, core)) => (
                    pid,
                    signal as i32 | if core { 0x80 } else { 0 },
                    128 + signal as u32,
                ),
                Ok(WaitStatus::StillAlive) | Err(_) => return,
                Ok(_) => continue,
            };
            if let Some(pid) = Pid::from_raw(pid.as_raw()) {
                self.deliver(pid, ExitStatus::from_raw(raw), status);
            }
        }
    }

    fn deliver(&self, pid: Pid, raw: ExitStatus, status: u32) {
        let mut state = self.lock();
        if let Some(tx) = state.spawned.remove(&pid) {
            let _ = tx.send(raw);
            return;
        }
        let exit = Exit {
            pid,
            status,
            at: SystemTime::now(),
        };
        state.subscribers.retain(|(_, tx)| tx.send(exit).is_ok());
    }

    /// A subscription to every exit from now on (except those of processes started with
    /// [`spawn`](Reaper::spawn), which go to their spawner).
    pub fn subscribe(&self) -> ExitSubscription {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut state = self.lock();
        state.next_id += 1;
        let id = state.next_id;
        state.subscribers.push((id, tx));
        ExitSubscription {
            id,
            rx,
            reaper: Arc::downgrade(&self.state),
        }
    }

    /// Spawns `command` and returns it with the receiver of its exit status. The wrapper never
    /// waits on the child: the reaper does, and its exit goes only to this receiver.
    ///
    /// A shim driving runc through `ctrd-runc` makes this its process monitor: a small type
    /// implementing `ctrd_runc::ProcessMonitor` whose `start` calls `spawn`.
    pub fn spawn(
        &self,
        command: &mut Command,
    ) -> std::io::Result<(Child, oneshot::Receiver<ExitStatus>)> {
        let mut state = self.lock();
        let child = command.spawn()?;
        let (tx, rx) = oneshot::channel();
        let pid = Pid::try_from(child.id()).map_err(std::io::Error::other)?;
        state.spawned.insert(pid, tx);
        Ok((child, rx))
    }
}

/// Exits seen since the subscription was made, in order.
#[derive(Debug)]
pub struct ExitSubscription {
    id: u64,
    rx: mpsc::UnboundedReceiver<Exit>,
    reaper: Weak<Mutex<State>>,
}

impl ExitSubscription {
    /// The next exit.
    pub async fn recv(&mut self) -> Option<Exit> {
        self.rx.recv().await
    }

    /// The next exit if one is waiting.
    pub fn try_recv(&mut self) -> Option<Exit> {
        self.rx.try_recv().ok()
    }
}

impl Drop for ExitSubscription {
    fn drop(&mut self) {
        if let Some(state) = self.reaper.upgrade() {
            let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
            state.subscribers.retain(|(id, _)| *id != self.id);
        }
    }
}
