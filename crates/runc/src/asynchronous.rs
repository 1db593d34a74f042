//! The async commands (feature `async`), on tokio.

use std::path::Path;
use std::process::ExitStatus;
use std::time::Duration;

use serde::Serialize;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::sync::oneshot;

use crate::deadline::Limit;
use crate::events::parse_line;
use crate::kill_handle::{self, KillHandle};
use crate::opts::{CheckpointOptions, CreateOptions, ExecOptions, RestoreOptions};
use crate::plan::{self, Finished, Outcome, Plan, build};
use crate::types::{Event, Features, State, Stats, Version};
use crate::{Error, Runc};

/// The async twin of [`Runc`]: the same commands, as `async fn`s. Make one with
/// [`Runc::to_async`].
#[derive(Debug, Clone)]
pub struct AsyncRunc {
    runc: Runc,
}

impl Runc {
    /// The async handle with the same options.
    pub fn to_async(&self) -> AsyncRunc {
        AsyncRunc { runc: self.clone() }
    }
}

/// A spawned runc and how its exit is collected.
enum Running {
    Tokio(tokio::process::Child),
    Monitored {
        pid: u32,
        exit: oneshot::Receiver<ExitStatus>,
    },
}

/// A spawned runc's output pipes.
struct Pipes {
    stdin: Option<Box<dyn tokio::io::AsyncWrite + Unpin + Send>>,
    stdout: Option<Box<dyn AsyncRead + Unpin + Send>>,
    stderr: Option<Box<dyn AsyncRead + Unpin + Send>>,
}

impl Running {
    fn pid(&self) -> Option<u32> {
        match self {
            Running::Tokio(child) => child.id(),
            Running::Monitored { pid, .. } => Some(*pid),
        }
    }

    /// The handle that kills this process and no other (see [`kill_handle`]); taken before
    /// anything waits on it.
    fn kill_handle(&self) -> KillHandle {
        let reaper = match self {
            Running::Tokio(_) => kill_handle::Reaper::Executor,
            Running::Monitored { .. } => kill_handle::Reaper::Monitor,
        };
        self.pid()
            .map_or(KillHandle::None, |pid| KillHandle::open(pid, reaper))
    }

    async fn wait(self) -> std::io::Result<ExitStatus> {
        match self {
            Running::Tokio(mut child) => child.wait().await,
            Running::Monitored { exit, .. } => exit
                .await
                .map_err(|_| std::io::Error::other("the process monitor dropped the exit")),
        }
    }
}

/// Kills a limited runc whose command future is dropped before runc finished.
struct KillOnDrop(Option<KillHandle>);

impl KillOnDrop {
    fn kill(&self) {
        if let Some(handle) = &self.0 {
            handle.kill();
        }
    }

    /// runc finished (or was killed and collected): nothing to do on drop.
    fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        self.kill();
    }
}

fn boxed<T: AsyncRead + Unpin + Send + 'static>(r: T) -> Box<dyn AsyncRead + Unpin + Send> {
    Box::new(r)
}

async fn read_all(pipe: Option<Box<dyn AsyncRead + Unpin + Send>>) -> Vec<u8> {
    let mut buf = Vec::new();
    if let Some(mut pipe) = pipe {
        let _ = pipe.read_to_end(&mut buf).await;
    }
    buf
}

impl AsyncRunc {
    /// The blocking handle with the same options.
    pub fn blocking(&self) -> &Runc {
        &self.runc
    }

    fn spawn(&self, plan: &mut Plan) -> Result<(Running, Pipes), Error> {
        let config = &self.runc.config;
        let mut command = plan.command(config);
        let spawned = match &config.monitor {
            Some(monitor) => monitor.start(&mut command).and_then(|mut started| {
                let stdin = started
                    .child
                    .stdin
                    .take()
                    .map(tokio::process::ChildStdin::from_std)
                    .transpose()?
                    .map(|w| Box::new(w) as Box<dyn tokio::io::AsyncWrite + Unpin + Send>);
                let stdout = started
                    .child
                    .stdout
                    .take()
                    .map(tokio::process::ChildStdout::from_std)
                    .transpose()?
                    .map(boxed);
                let stderr = started
                    .child
                    .stderr
                    .take()
                    .map(tokio::process::ChildStderr::from_std)
                    .transpose()?
                    .map(boxed);
                Ok((
                    Running::Monitored {
                        pid: started.child.id(),
                        exit: started.exit,
                    },
                    Pipes {
                        stdin,
                        stdout,
                        stderr,
                    },
                ))
            }),
            None => {
                let mut command = tokio::process::Command::from(command);
                // The std command already moved its streams into the tokio one.
                command.kill_on_drop(false);
                let spawned = command.spawn().map(|mut child| {
                    let pipes = Pipes {
                        stdin: child
                            .stdin
                            .take()
                            .map(|w| Box::new(w) as Box<dyn tokio::io::AsyncWrite + Unpin + Send>),
                        stdout: child.stdout.take().map(boxed),
                        stderr: child.stderr.take().map(boxed),
                    };
                    (Running::Tokio(child), pipes)
                });
                drop(command);
                return spawned.map_err(|e| self.runc.spawn_error(plan, e));
            }
        };
        drop(command);
        spawned.map_err(|e| self.runc.spawn_error(plan, e))
    }

    async fn execute(&self, mut plan: Plan) -> Result<(Plan, Outcome), Error> {
        let limit = Limit::of(self.runc.config.timeout).filter(|_| plan.limited);
        if limit == Some(Limit::Deadline(Duration::ZERO)) {
            // Nothing is started for a caller that has already given up.
            return Err(Error::DeadlineExceeded {
                command: plan.display.clone(),
                after: Duration::ZERO,
            });
        }
        let (running, mut pipes) = self.spawn(&mut plan)?;
        // Taken now, before the monitor or tokio can reap runc and free its pid. A limited
        // command is killed if this future is dropped before runc finished (the caller gave
        // up: a ttrpc server drops a handler at the request's deadline).
        let killer = plan
            .limited
            .then(|| KillOnDrop(Some(running.kill_handle())));
        let display = plan.display.clone();
        let stdin_data = plan.stdin.take();
        let work = async move {
            if let (Some(data), Some(mut stdin)) = (stdin_data, pipes.stdin.take()) {
                stdin.write_all(&data).await?;
                drop(stdin);
            }
            let (stdout, stderr) = tokio::join!(read_all(pipes.stdout), read_all(pipes.stderr));
            let status = running.wait().await?;
            Ok::<_, std::io::Error>(Outcome {
                status,
                stdout,
                stderr,
            })
        };
        tokio::pin!(work);
        // Declared after `work`, so dropped before it: the kill comes before the child is let go.
        let mut killer = killer;
        let outcome = match limit {
            None => (&mut work).await,
            Some(limit) => match tokio::time::timeout(limit.duration(), &mut work).await {
                Ok(result) => result,
                Err(_) => {
                    if let Some(killer) = &killer {
                        killer.kill();
                    }
                    // Collect the killed process before reporting.
                    let _ = (&mut work).await;
                    if let Some(killer) = &mut killer {
                        killer.disarm();
                    }
                    return Err(match limit {
                        Limit::Timeout(timeout) => Error::Timeout {
                            command: display,
                            timeout,
                        },
                        Limit::Deadline(after) => Error::DeadlineExceeded {
                            command: display,
                            after,
                        },
                    });
                }
            },
        };
        if let Some(killer) = &mut killer {
            killer.disarm();
        }
        let outcome = outcome.map_err(|e| Error::Io {
            command: display,
            context: "running runc",
            error: e,
        })?;
        Ok((plan, outcome))
    }

    async fn finish(&self, plan: Plan) -> Result<Finished, Error> {
        let (plan, outcome) = self.execute(plan).await?;
        plan.finish(outcome)
    }

    async fn pid_of(&self, plan: Plan) -> Result<u32, Error> {
        let display = plan.display.clone();
        self.finish(plan).await?.pid.ok_or(Error::Parse {
            command: display,
            message: "no pid was written".into(),
        })
    }

    async fn json<T: serde::de::DeserializeOwned>(&self, plan: Plan) -> Result<T, Error> {
        let display = plan.display.clone();
        plan::parse_json(&display, &self.finish(plan).await?.stdout)
    }

    /// [`Runc::create`], async.
    pub async fn create(&self, id: &str, bundle: &Path, opts: CreateOptions) -> Result<u32, Error> {
        self.pid_of(build::create(&self.runc.config, id, bundle, opts)?)
            .await
    }

    /// [`Runc::start`], async.
    pub async fn start(&self, id: &str) -> Result<(), Error> {
        self.finish(build::simple(&self.runc.config, "start", id)?)
            .await
            .map(drop)
    }

    /// [`Runc::run_detached`], async.
    pub async fn run_detached(
        &self,
        id: &str,
        bundle: &Path,
        opts: CreateOptions,
    ) -> Result<u32, Error> {
        self.pid_of(build::run(&self.runc.config, id, bundle, opts, true)?)
            .await
    }

    /// [`Runc::run`], async.
    pub async fn run(
        &self,
        id: &str,
        bundle: &Path,
        opts: CreateOptions,
    ) -> Result<ExitStatus, Error> {
        let plan = build::run(&self.runc.config, id, bundle, opts, false)?;
        let (plan, outcome) = self.execute(plan).await?;
        plan.finish_foreground(outcome)
    }

    /// [`Runc::exec_detached`], async.
    pub async fn exec_detached(
        &self,
        id: &str,
        process: &(impl Serialize + ?Sized),
        opts: ExecOptions,
    ) -> Result<u32, Error> {
        self.pid_of(build::exec(&self.runc.config, id, process, opts, true)?)
            .await
    }

    /// [`Runc::exec`], async.
    pub async fn exec(
        &self,
        id: &str,
        process: &(impl Serialize + ?Sized),
        opts: ExecOptions,
    ) -> Result<ExitStatus, Error> {
        let plan = build::exec(&self.runc.config, id, process, opts, false)?;
        let (plan, outcome) = self.execute(plan).await?;
        plan.finish_foreground(outcome)
    }

    /// [`Runc::kill`], async.
    pub async fn kill(&self, id: &str, signal: i32, all: bool) -> Result<(), Error> {
        self.finish(build::kill(&self.runc.config, id, signal, all)?)
            .await
            .map(drop)
    }

    /// [`Runc::delete`], async.
    pub async fn delete(&self, id: &str, force: bool) -> Result<(), Error> {
        self.finish(build::delete(&self.runc.config, id, force)?)
            .await
            .map(drop)
    }

    /// [`Runc::state`], async.
    pub async fn state(&self, id: &str) -> Result<State, Error> {
        self.json(build::simple(&self.runc.config, "state", id)?)
            .await
    }

    /// [`Runc::list`], async.
    pub async fn list(&self) -> Result<Vec<State>, Error> {
        let list: Option<Vec<State>> = self.json(build::list(&self.runc.config)?).await?;
        Ok(list.unwrap_or_default())
    }

    /// [`Runc::ps`], async.
    pub async fn ps(&self, id: &str) -> Result<Vec<i32>, Error> {
        let pids: Option<Vec<i32>> = self.json(build::ps(&self.runc.config, id)?).await?;
        Ok(pids.unwrap_or_default())
    }

    /// [`Runc::pause`], async.
    pub async fn pause(&self, id: &str) -> Result<(), Error> {
        self.finish(build::simple(&self.runc.config, "pause", id)?)
            .await
            .map(drop)
    }

    /// [`Runc::resume`], async.
    pub async fn resume(&self, id: &str) -> Result<(), Error> {
        self.finish(build::simple(&self.runc.config, "resume", id)?)
            .await
            .map(drop)
    }

    /// [`Runc::update`], async.
    pub async fn update(
        &self,
        id: &str,
        resources: &(impl Serialize + ?Sized),
    ) -> Result<(), Error> {
        self.finish(build::update(&self.runc.config, id, resources)?)
            .await
            .map(drop)
    }

    /// [`Runc::stats`], async.
    pub async fn stats(&self, id: &str) -> Result<Stats, Error> {
        let plan = build::stats(&self.runc.config, id)?;
        let display = plan.display.clone();
        let event: Event = self.json(plan).await?;
        event.data.ok_or(Error::Parse {
            command: display,
            message: "the stats event carries no data".into(),
        })
    }

    /// [`Runc::events`], async.
    pub async fn events(&self, id: &str, interval: Duration) -> Result<AsyncEventStream, Error> {
        let mut plan = build::events(&self.runc.config, id, interval)?;
        let (running, pipes) = self.spawn(&mut plan)?;
        Ok(AsyncEventStream {
            display: plan.display,
            lines: pipes.stdout.map(|r| BufReader::new(r).lines()),
            killer: running.kill_handle(),
            running: Some(running),
        })
    }

    /// [`Runc::checkpoint`], async.
    pub async fn checkpoint(&self, id: &str, opts: &CheckpointOptions) -> Result<(), Error> {
        self.finish(build::checkpoint(&self.runc.config, id, opts)?)
            .await
            .map(drop)
    }

    /// [`Runc::restore`], async.
    pub async fn restore(
        &self,
        id: &str,
        bundle: &Path,
        opts: RestoreOptions,
    ) -> Result<u32, Error> {
        self.pid_of(build::restore(&self.runc.config, id, bundle, opts)?)
            .await
    }

    /// [`Runc::features`], async.
    pub async fn features(&self) -> Result<Features, Error> {
        self.json(build::features(&self.runc.config)?).await
    }

    /// [`Runc::version`], async.
    pub async fn version(&self) -> Result<Version, Error> {
        let stdout = self
            .finish(build::version(&self.runc.config)?)
            .await?
            .stdout;
        Ok(Version::parse(&String::from_utf8_lossy(&stdout)))
    }
}

/// Events of one container from a running `runc events`; [`next`](AsyncEventStream::next)
/// returns `None` when runc exits. Dropping it stops runc.
pub struct AsyncEventStream {
    display: String,
    lines: Option<tokio::io::Lines<BufReader<Box<dyn AsyncRead + Unpin + Send>>>>,
    running: Option<Running>,
    /// Stops runc when the stream is dropped, without reaching a process that reused its pid.
    killer: KillHandle,
}

impl std::fmt::Debug for AsyncEventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncEventStream")
            .field("command", &self.display)
            .finish_non_exhaustive()
    }
}

impl AsyncEventStream {
    /// The next event, or `None` once runc has exited.
    pub async fn next(&mut self) -> Option<Result<Event, Error>> {
        loop {
            let lines = self.lines.as_mut()?;
            match lines.next_line().await {
                Ok(Some(line)) if line.trim().is_empty() => continue,
                Ok(Some(line)) => return Some(parse_line(&self.display, line.trim())),
                Ok(None) => {
                    self.lines = None;
                    if let Some(running) = self.running.take() {
                        let _ = running.wait().await;
                    }
                    return None;
                }
                Err(e) => {
                    self.lines = None;
                    return Some(Err(Error::Io {
                        command: self.display.clone(),
                        context: "reading events",
                        error: e,
                    }));
                }
            }
        }
    }
}

impl Drop for AsyncEventStream {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            self.killer.kill();
            // A tokio child dropped unwaited is reaped by tokio in the background; a
            // monitored one by its monitor.
            drop(running);
        }
    }
}
