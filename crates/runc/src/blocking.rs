//! The blocking commands.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, ExitStatus};
use std::sync::mpsc;
use std::time::Duration;

use nix::sys::wait::{Id, WaitPidFlag, waitid};
use nix::unistd::Pid;
use serde::Serialize;

use crate::events::EventStream;
use crate::kill_handle::{self, KillHandle};
use crate::opts::{CheckpointOptions, CreateOptions, ExecOptions, RestoreOptions};
use crate::plan::{self, Finished, Outcome, Plan, build};
use crate::types::{Event, Features, State, Stats, Version};
use crate::{Error, Runc};

/// How the exit of a spawned runc is collected.
pub(crate) enum Exit {
    /// By waiting on the child ourselves.
    Child,
    /// From the caller's process monitor.
    Monitor(tokio::sync::oneshot::Receiver<ExitStatus>),
}

impl Runc {
    /// Spawns the plan's command, through the monitor if one is set.
    pub(crate) fn spawn(&self, plan: &mut Plan) -> Result<(Child, Exit), Error> {
        let mut command: Command = plan.command(&self.config);
        let spawned = match &self.config.monitor {
            Some(monitor) => monitor
                .start(&mut command)
                .map(|started| (started.child, Exit::Monitor(started.exit))),
            None => command.spawn().map(|child| (child, Exit::Child)),
        };
        // Dropping the command closes this process's copies of the container's fds.
        drop(command);
        spawned.map_err(|e| self.spawn_error(plan, e))
    }

    pub(crate) fn spawn_error(&self, plan: &Plan, e: std::io::Error) -> Error {
        if e.kind() == std::io::ErrorKind::NotFound
            || e.kind() == std::io::ErrorKind::PermissionDenied
        {
            Error::BinaryNotFound {
                binary: self.config.binary.clone(),
                error: e,
            }
        } else {
            Error::Io {
                command: plan.display.clone(),
                context: "spawning runc",
                error: e,
            }
        }
    }

    /// Runs a plan to completion.
    fn execute(&self, mut plan: Plan) -> Result<(Plan, Outcome), Error> {
        let (mut child, exit) = self.spawn(&mut plan)?;
        let io_error = |context, error| Error::Io {
            command: plan.display.clone(),
            context,
            error,
        };
        let timeout = self.config.timeout.filter(|_| plan.limited);
        let reaper = match exit {
            Exit::Child => kill_handle::Reaper::Executor,
            Exit::Monitor(_) => kill_handle::Reaper::Monitor,
        };
        let watchdog = timeout.map(|t| Watchdog::start(KillHandle::open(child.id(), reaper), t));

        if let (Some(data), Some(mut stdin)) = (plan.stdin.take(), child.stdin.take()) {
            stdin
                .write_all(&data)
                .map_err(|e| io_error("writing runc's input", e))?;
        }
        let mut stdout = Vec::new();
        let mut stderr = Vec::new();
        let (out_pipe, err_pipe) = (child.stdout.take(), child.stderr.take());
        std::thread::scope(|scope| {
            let errors = err_pipe.map(|mut pipe| {
                scope.spawn(move || {
                    let mut buf = Vec::new();
                    let _ = pipe.read_to_end(&mut buf);
                    buf
                })
            });
            if let Some(mut pipe) = out_pipe {
                let _ = pipe.read_to_end(&mut stdout);
            }
            if let Some(handle) = errors {
                stderr = handle.join().unwrap_or_default();
            }
        });
        let (status, killed) = match exit {
            Exit::Child => {
                if watchdog.is_some() {
                    // Wait without reaping, so the pid cannot be reused while the watchdog
                    // might still signal it; stop the watchdog, then reap.
                    let _ = waitid(
                        Id::Pid(Pid::from_raw(child.id() as i32)),
                        WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT,
                    );
                }
                let killed = watchdog.is_some_and(Watchdog::stop);
                let status = child.wait().map_err(|e| io_error("waiting for runc", e))?;
                (status, killed)
            }
            // The monitor reaps; its exit arrives after the fact.
            Exit::Monitor(rx) => {
                let status = rx.blocking_recv();
                let killed = watchdog.is_some_and(Watchdog::stop);
                let status = status.map_err(|_| {
                    io_error(
                        "waiting for runc",
                        std::io::Error::other("the process monitor dropped the exit"),
                    )
                })?;
                (status, killed)
            }
        };
        if killed && let Some(timeout) = timeout {
            return Err(Error::Timeout {
                command: plan.display.clone(),
                timeout,
            });
        }
        Ok((
            plan,
            Outcome {
                status,
                stdout,
                stderr,
            },
        ))
    }

    fn finish(&self, plan: Plan) -> Result<Finished, Error> {
        let (plan, outcome) = self.execute(plan)?;
        plan.finish(outcome)
    }

    fn pid_of(&self, plan: Plan) -> Result<u32, Error> {
        let display = plan.display.clone();
        self.finish(plan)?.pid.ok_or(Error::Parse {
            command: display,
            message: "no pid was written".into(),
        })
    }

    /// Creates a container from `bundle` and returns its init process's pid
    /// (`runc create`). The process waits for [`start`](Runc::start).
    pub fn create(&self, id: &str, bundle: &Path, opts: CreateOptions) -> Result<u32, Error> {
        self.pid_of(build::create(&self.config, id, bundle, opts)?)
    }

    /// Starts a created container (`runc start`).
    pub fn start(&self, id: &str) -> Result<(), Error> {
        self.finish(build::simple(&self.config, "start", id)?)
            .map(drop)
    }

    /// Creates and starts a container, returning the pid of its init process
    /// (`runc run --detach`).
    pub fn run_detached(&self, id: &str, bundle: &Path, opts: CreateOptions) -> Result<u32, Error> {
        self.pid_of(build::run(&self.config, id, bundle, opts, true)?)
    }

    /// Runs a container in the foreground and returns its init process's exit status
    /// (`runc run`). An error means runc itself failed.
    pub fn run(&self, id: &str, bundle: &Path, opts: CreateOptions) -> Result<ExitStatus, Error> {
        let (plan, outcome) = self.execute(build::run(&self.config, id, bundle, opts, false)?)?;
        plan.finish_foreground(outcome)
    }

    /// Starts `process` in a running container and returns its pid (`runc exec --detach`).
    /// The spec reaches runc through an in-memory file; nothing is left on disk.
    ///
    /// `process` is an OCI [`Process`](crate::spec::Process), or its JSON as received (a
    /// `serde_json::Value`), which runc checks: a caller that only passes a spec on needs
    /// neither the typed spec nor its validators linked in.
    pub fn exec_detached(
        &self,
        id: &str,
        process: &(impl Serialize + ?Sized),
        opts: ExecOptions,
    ) -> Result<u32, Error> {
        self.pid_of(build::exec(&self.config, id, process, opts, true)?)
    }

    /// Runs `process` in a running container in the foreground and returns its exit status
    /// (`runc exec`). An error means runc itself failed. `process` as for
    /// [`exec_detached`](Self::exec_detached).
    pub fn exec(
        &self,
        id: &str,
        process: &(impl Serialize + ?Sized),
        opts: ExecOptions,
    ) -> Result<ExitStatus, Error> {
        let (plan, outcome) = self.execute(build::exec(&self.config, id, process, opts, false)?)?;
        plan.finish_foreground(outcome)
    }

    /// Sends `signal` to the container's init process, or with `all` to all its processes
    /// (`runc kill`).
    pub fn kill(&self, id: &str, signal: i32, all: bool) -> Result<(), Error> {
        self.finish(build::kill(&self.config, id, signal, all)?)
            .map(drop)
    }

    /// Deletes a container; `force` kills it first if it runs (`runc delete`).
    pub fn delete(&self, id: &str, force: bool) -> Result<(), Error> {
        self.finish(build::delete(&self.config, id, force)?)
            .map(drop)
    }

    /// The container's state (`runc state`).
    pub fn state(&self, id: &str) -> Result<State, Error> {
        let plan = build::simple(&self.config, "state", id)?;
        let display = plan.display.clone();
        plan::parse_json(&display, &self.finish(plan)?.stdout)
    }

    /// Every container under the root (`runc list`).
    pub fn list(&self) -> Result<Vec<State>, Error> {
        let plan = build::list(&self.config)?;
        let display = plan.display.clone();
        let list: Option<Vec<State>> = plan::parse_json(&display, &self.finish(plan)?.stdout)?;
        Ok(list.unwrap_or_default())
    }

    /// Pids of the container's processes (`runc ps`).
    pub fn ps(&self, id: &str) -> Result<Vec<i32>, Error> {
        let plan = build::ps(&self.config, id)?;
        let display = plan.display.clone();
        let pids: Option<Vec<i32>> = plan::parse_json(&display, &self.finish(plan)?.stdout)?;
        Ok(pids.unwrap_or_default())
    }

    /// Freezes the container (`runc pause`).
    pub fn pause(&self, id: &str) -> Result<(), Error> {
        self.finish(build::simple(&self.config, "pause", id)?)
            .map(drop)
    }

    /// Thaws the container (`runc resume`).
    pub fn resume(&self, id: &str) -> Result<(), Error> {
        self.finish(build::simple(&self.config, "resume", id)?)
            .map(drop)
    }

    /// Changes the container's resource limits (`runc update --resources -`). `resources` is
    /// an OCI [`LinuxResources`](crate::spec::LinuxResources) or its JSON, as for
    /// [`exec_detached`](Self::exec_detached).
    pub fn update(&self, id: &str, resources: &(impl Serialize + ?Sized)) -> Result<(), Error> {
        self.finish(build::update(&self.config, id, resources)?)
            .map(drop)
    }

    /// The container's resource statistics, once (`runc events --stats`).
    pub fn stats(&self, id: &str) -> Result<Stats, Error> {
        let plan = build::stats(&self.config, id)?;
        let display = plan.display.clone();
        let event: Event = plan::parse_json(&display, &self.finish(plan)?.stdout)?;
        event.data.ok_or(Error::Parse {
            command: display,
            message: "the stats event carries no data".into(),
        })
    }

    /// The container's events, as they happen: statistics every `interval` and OOM kills
    /// (`runc events`). Dropping the stream stops runc.
    pub fn events(&self, id: &str, interval: Duration) -> Result<EventStream, Error> {
        let mut plan = build::events(&self.config, id, interval)?;
        let (child, exit) = self.spawn(&mut plan)?;
        Ok(EventStream::new(plan, child, exit))
    }

    /// Checkpoints the container with CRIU (`runc checkpoint`).
    pub fn checkpoint(&self, id: &str, opts: &CheckpointOptions) -> Result<(), Error> {
        self.finish(build::checkpoint(&self.config, id, opts)?)
            .map(drop)
    }

    /// Restores a container from a checkpoint, detached, and returns its init process's pid
    /// (`runc restore --detach`).
    pub fn restore(&self, id: &str, bundle: &Path, opts: RestoreOptions) -> Result<u32, Error> {
        self.pid_of(build::restore(&self.config, id, bundle, opts)?)
    }

    /// What this runc supports (`runc features`).
    pub fn features(&self) -> Result<Features, Error> {
        let plan = build::features(&self.config)?;
        let display = plan.display.clone();
        plan::parse_json(&display, &self.finish(plan)?.stdout)
    }

    /// runc's version (`runc --version`).
    pub fn version(&self) -> Result<Version, Error> {
        let stdout = self.finish(build::version(&self.config)?)?.stdout;
        Ok(Version::parse(&String::from_utf8_lossy(&stdout)))
    }
}

/// Kills a process that outlives its timeout.
struct Watchdog {
    done: mpsc::Sender<()>,
    fired: std::thread::JoinHandle<bool>,
}

impl Watchdog {
    fn start(target: KillHandle, timeout: Duration) -> Watchdog {
        let (done, rx) = mpsc::channel::<()>();
        let fired = std::thread::spawn(move || {
            if rx.recv_timeout(timeout) == Err(mpsc::RecvTimeoutError::Timeout) {
                target.kill();
                true
            } else {
                false
            }
        });
        Watchdog { done, fired }
    }

    /// Stops the watchdog; whether it had killed the process.
    fn stop(self) -> bool {
        let _ = self.done.send(());
        self.fired.join().unwrap_or(false)
    }
}
