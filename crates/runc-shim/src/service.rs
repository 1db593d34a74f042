//! The task service: containerd's task calls mapped onto [`Container`]s, and their errors
//! onto ttrpc statuses.
//!
//! The service lock guards the containers and the exit router only while state is read or
//! changed; it is never held across an `await`, so runc calls, stdio set-up and the blocking
//! steps of `Create` (which run on the blocking pool) never stall another call.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use ctrd_api::containerd::events::{
    TaskCheckpointed, TaskCreate, TaskDelete, TaskExecAdded, TaskExecStarted, TaskIo, TaskPaused,
    TaskResumed, TaskStart,
};
use ctrd_api::containerd::runc::v1::{CheckpointOptions as RuncCheckpoint, ProcessDetails};
use ctrd_api::containerd::task::v2::*;
use ctrd_api::containerd::v1::types::ProcessInfo;
use ctrd_api::ttrpc;
use ctrd_api::ttrpc::r#async::TtrpcContext;
use ctrd_api::{Event, TypeUrl};
use ctrd_runc::AsyncRunc;
use ctrd_shim::{Exit, Pid, ServeContext};

use crate::container::Container;
use crate::create::{self, Restore};
use crate::deadline;
use crate::error::{Error, process_name};
use crate::exec::{self, Launch};
use crate::exits::{Call, Effect, ExitRouter};
use crate::process::{InvalidTransition, Process, State};
use crate::stdio::Stdio;
use crate::{metrics, oom};

/// What the service lock guards.
#[derive(Default)]
struct Shared {
    containers: HashMap<String, Container>,
    /// Ids whose `Create` is under way (their bundle is being mounted).
    creating: HashSet<String>,
    exits: ExitRouter,
}

impl Shared {
    fn container(&self, id: &str) -> Result<&Container, Error> {
        self.containers
            .get(id)
            .ok_or_else(|| Error::ContainerNotFound { id: id.to_owned() })
    }

    fn container_mut(&mut self, id: &str) -> Result<&mut Container, Error> {
        self.containers
            .get_mut(id)
            .ok_or_else(|| Error::ContainerNotFound { id: id.to_owned() })
    }
}

/// The runc task service of one shim (one container, or the containers of one group).
#[derive(Clone)]
pub struct Service {
    ctx: ServeContext,
    shared: Arc<Mutex<Shared>>,
}

/// A runc call that may start a process, open until its exit is claimed or it fails.
struct PendingCall<'a> {
    shared: &'a Mutex<Shared>,
    call: Option<Call>,
}

impl PendingCall<'_> {
    /// Applies an exit of `pid` that came while the call ran, and ends the call.
    fn claim(mut self, shared: &mut Shared, pid: Pid) -> Vec<Effect> {
        let Some(call) = self.call.take() else {
            return Vec::new();
        };
        let Shared {
            containers, exits, ..
        } = shared;
        let effects = exits.claim(containers, pid, &call);
        exits.end(call);
        effects
    }
}

impl Drop for PendingCall<'_> {
    fn drop(&mut self) {
        if let Some(call) = self.call.take() {
            lock(self.shared).exits.end(call);
        }
    }
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    // A panic under the lock leaves the maps consistent; keep serving.
    shared.lock().unwrap_or_else(|p| p.into_inner())
}

/// The result of a state change after runc did its part: an exit that came in between wins.
fn after_runc(
    result: Result<State, InvalidTransition>,
    id: &str,
    exec_id: &str,
) -> Result<(), Error> {
    match result {
        Ok(_) => Ok(()),
        Err(t) if matches!(t.from, State::Stopped { .. }) => Ok(()),
        Err(transition) => Err(Error::InvalidState {
            process: process_name(id, exec_id),
            transition,
        }),
    }
}

impl Service {
    /// Starts the service and its exit handling.
    pub fn new(ctx: ServeContext) -> Service {
        let service = Service {
            ctx,
            shared: Arc::default(),
        };
        // Subscribed before any container exists: no exit can come before it.
        let mut exits = service.ctx.reaper.subscribe();
        let handler = service.clone();
        tokio::spawn(async move {
            while let Some(exit) = exits.recv().await {
                handler.on_exit(exit);
            }
        });
        service
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        lock(&self.shared)
    }

    fn publish<E: Event>(&self, event: &E) {
        if let Err(e) = self.ctx.publisher.publish(event) {
            tracing::warn!(error = %e, "event not published");
        }
    }

    /// Carries out what exit routing decided, outside the lock.
    fn apply(&self, effects: Vec<Effect>) {
        for effect in effects {
            match effect {
                Effect::Publish(exit) => self.publish(&exit),
                Effect::KillAll { id, runc } => {
                    tokio::spawn(async move {
                        if let Err(e) = runc.kill(&id, 9, true).await {
                            tracing::warn!(%id, error = %e, "killing the container's processes");
                        }
                    });
                }
            }
        }
    }

    fn on_exit(&self, exit: Exit) {
        let effects = {
            let mut shared = self.lock();
            let Shared {
                containers, exits, ..
            } = &mut *shared;
            exits.route(containers, exit)
        };
        self.apply(effects);
    }

    /// Opens a runc call that may start a process whose pid is not known yet.
    fn begin(&self) -> PendingCall<'_> {
        let call = self.lock().exits.begin();
        PendingCall {
            shared: &self.shared,
            call: Some(call),
        }
    }

    /// Reads from the container `id` under the lock.
    fn with<T>(
        &self,
        id: &str,
        f: impl FnOnce(&Container) -> Result<T, Error>,
    ) -> Result<T, Error> {
        f(self.lock().container(id)?)
    }

    /// Changes the container `id` under the lock.
    fn with_mut<T>(
        &self,
        id: &str,
        f: impl FnOnce(&mut Container) -> Result<T, Error>,
    ) -> Result<T, Error> {
        f(self.lock().container_mut(id)?)
    }

    fn runc_of(&self, id: &str) -> Result<AsyncRunc, Error> {
        self.with(id, |c| Ok(c.runc.clone()))
    }

    async fn create(&self, req: CreateTaskRequest) -> Result<CreateTaskResponse, Error> {
        let id = req.id.clone();
        {
            let mut shared = self.lock();
            if shared.containers.contains_key(&id) || !shared.creating.insert(id.clone()) {
                return Err(Error::ContainerExists { id });
            }
        }
        let mut event = TaskCreate {
            container_id: req.id.clone(),
            bundle: req.bundle.clone(),
            rootfs: req.rootfs.clone(),
            io: Some(TaskIo {
                stdin: req.stdin.clone(),
                stdout: req.stdout.clone(),
                stderr: req.stderr.clone(),
                terminal: req.terminal,
            }),
            checkpoint: req.checkpoint.clone(),
            pid: 0,
        };
        let call = self.begin();
        let created = create::create(&self.ctx, req).await;
        let effects = {
            let mut shared = self.lock();
            shared.creating.remove(&id);
            let container = created?;
            let pid = container.init.state().pid();
            event.pid = Pid::to_proto(pid);
            shared.containers.insert(id, container);
            match pid {
                Some(pid) => call.claim(&mut shared, pid),
                None => Vec::new(),
            }
        };
        let pid = event.pid;
        self.publish(&event);
        self.apply(effects);
        Ok(CreateTaskResponse { pid })
    }

    async fn start_init(&self, id: &str) -> Result<StartResponse, Error> {
        enum Init {
            Created(Pid, AsyncRunc),
            Restore(Box<Restore>),
        }
        let init = self.with_mut(id, |c| match c.init.state() {
            State::Created { pid } => Ok(Init::Created(pid, c.runc.clone())),
            State::Defined if c.restore.is_some() => {
                let pending = c
                    .restore
                    .take()
                    .ok_or(Error::NotRunning { id: c.id.clone() })?;
                Ok(Init::Restore(Box::new(Restore {
                    id: c.id.clone(),
                    bundle: c.bundle.clone(),
                    runc: c.runc.clone(),
                    stdio: c.init.stdio.clone(),
                    pending,
                })))
            }
            from => Err(Error::InvalidState {
                process: process_name(id, ""),
                transition: InvalidTransition {
                    action: "start",
                    from,
                },
            }),
        })?;
        let (pid, effects) = match init {
            Init::Created(pid, runc) => {
                runc.start(id).await?;
                (pid, Vec::new())
            }
            Init::Restore(restore) => {
                let call = self.begin();
                let (pid, console) = create::restore(*restore).await?;
                let mut shared = self.lock();
                let c = shared.container_mut(id)?;
                c.init.console = console;
                c.cgroup = create::cgroup_of(id, pid);
                after_runc(c.init.created(pid), id, "")?;
                (pid, call.claim(&mut shared, pid))
            }
        };
        self.with(id, |c| after_runc(c.init.started(pid), id, ""))?;
        oom::watch(pid.into(), id.to_owned(), self.ctx.publisher.clone());
        self.publish(&TaskStart {
            container_id: id.to_owned(),
            pid: pid.into(),
        });
        self.apply(effects);
        Ok(StartResponse { pid: pid.into() })
    }

    async fn start_exec(&self, id: &str, exec_id: &str) -> Result<StartResponse, Error> {
        let launch = self.with(id, |c| {
            if !c.is_running() {
                return Err(Error::NotRunning { id: id.to_owned() });
            }
            let exec = c.process(exec_id)?;
            if exec.state() != State::Defined {
                return Err(Error::InvalidState {
                    process: process_name(id, exec_id),
                    transition: InvalidTransition {
                        action: "start",
                        from: exec.state(),
                    },
                });
            }
            Ok(Launch {
                id: id.to_owned(),
                exec_id: exec_id.to_owned(),
                runc: c.runc.clone(),
                bundle: c.bundle.clone(),
                stdio: exec.stdio.clone(),
                spec: exec.spec.clone().unwrap_or_default(),
            })
        })?;
        let call = self.begin();
        let launched = match exec::start(&self.ctx, launch).await {
            Ok(launched) => launched,
            Err(e) => {
                // It will never run: a Wait on it (containerd's CRI waits before it deletes a
                // failed exec) returns now.
                let _ = self.with(id, |c| Ok(c.process(exec_id)?.start_failed()));
                return Err(e);
            }
        };
        let pid = launched.pid;
        let recorded = {
            let mut shared = self.lock();
            let started = shared.container_mut(id).and_then(|c| {
                let exec = c.process_mut(exec_id)?;
                exec.handles = launched.handles;
                exec.console = launched.console;
                exec.started(pid).map_err(|transition| Error::InvalidState {
                    process: process_name(id, exec_id),
                    transition,
                })
            });
            started.map(|_| call.claim(&mut shared, pid))
        };
        let effects = match recorded {
            Ok(effects) => effects,
            Err(e) => {
                // Deleted or started twice meanwhile: nobody manages this process.
                let _ = pid.signal(nix::sys::signal::Signal::SIGKILL);
                return Err(e);
            }
        };
        self.publish(&TaskExecStarted {
            container_id: id.to_owned(),
            exec_id: exec_id.to_owned(),
            pid: pid.into(),
        });
        self.apply(effects);
        Ok(StartResponse { pid: pid.into() })
    }

    fn add_exec(&self, req: ExecProcessRequest) -> Result<(), Error> {
        crate::validate::exec(&req)?;
        let spec = req
            .spec
            .map(|s| s.value)
            .ok_or_else(|| Error::invalid("exec", "it needs a process spec"))?;
        let stdio = Stdio {
            stdin: req.stdin,
            stdout: req.stdout,
            stderr: req.stderr,
            terminal: req.terminal,
        };
        self.with_mut(&req.id, |c| c.add_exec(&req.exec_id, stdio, spec))?;
        self.publish(&TaskExecAdded {
            container_id: req.id,
            exec_id: req.exec_id,
        });
        Ok(())
    }

    async fn wait(&self, req: WaitRequest) -> Result<WaitResponse, Error> {
        let mut rx = self.with(&req.id, |c| Ok(c.process(&req.exec_id)?.exited()))?;
        let finished = rx.wait_for(Process::is_finished).await;
        match finished.as_deref() {
            Ok(State::Stopped { status, at, .. }) => Ok(WaitResponse {
                exit_status: *status,
                exited_at: Some(*at),
            }),
            // As the Go shim answers for an exec whose start failed.
            Ok(State::StartFailed) => Ok(WaitResponse {
                exit_status: 0,
                exited_at: None,
            }),
            _ => Err(Error::ContainerNotFound { id: req.id }),
        }
    }

    async fn kill(&self, req: KillRequest) -> Result<(), Error> {
        let signal = crate::validate::signal(req.signal)?;
        let (runc, life) = self.with(&req.id, |c| Ok((c.runc.clone(), c.life.clone())))?;
        // Init's kill goes through runc: a Delete must wait for it (see `Container::life`).
        let _life = if req.exec_id.is_empty() {
            Some(life.lock_owned().await)
        } else {
            None
        };
        let state = self.with(&req.id, |c| Ok(c.process(&req.exec_id)?.state()))?;
        let Some(pid) = state.live_pid() else {
            if matches!(state, State::Defined | State::StartFailed) {
                return Err(Error::NotStarted {
                    process: process_name(&req.id, &req.exec_id),
                });
            }
            return Err(Error::NoProcess {
                process: process_name(&req.id, &req.exec_id),
                state: state.name(),
            });
        };
        if req.exec_id.is_empty() {
            match runc.kill(&req.id, signal, req.all).await {
                // Exited before runc could signal it, its exit not yet handled here: gone, as
                // containerd expects (NOT_FOUND), not a failed stop.
                Err(e) if e.is_not_running() => Err(Error::NoProcess {
                    process: process_name(&req.id, &req.exec_id),
                    state: "exited",
                }),
                result => Ok(result?),
            }
        } else {
            let signal = nix::sys::signal::Signal::try_from(signal)
                .map_err(|e| Error::invalid("signal", e))?;
            pid.signal(signal).map_err(|e| Error::NoProcess {
                process: process_name(&req.id, &req.exec_id),
                state: if e == nix::errno::Errno::ESRCH {
                    "exited"
                } else {
                    "not signallable"
                },
            })
        }
    }

    async fn delete(&self, req: DeleteRequest) -> Result<DeleteResponse, Error> {
        if !req.exec_id.is_empty() {
            let state = self.with_mut(&req.id, |c| c.remove_exec(&req.exec_id))?;
            return Ok(deleted(state));
        }
        let life = self.with(&req.id, |c| Ok(c.life.clone()))?;
        let _life = life.lock_owned().await;
        let (runc, state) = self.with(&req.id, |c| Ok((c.runc.clone(), c.init.state())))?;
        if matches!(state, State::Running { .. } | State::Paused { .. }) {
            return Err(Error::StillRunning {
                process: process_name(&req.id, ""),
            });
        }
        if let Err(e) = runc.delete(&req.id, true).await
            && !e.is_not_found()
        {
            return Err(e.into());
        }
        let container = self.lock().containers.remove(&req.id);
        if let Some(rootfs) = container.and_then(|mut c| c.rootfs.take()) {
            rootfs.unmount().await;
        }
        let response = match state {
            State::Stopped { .. } => deleted(state),
            // Deleted before it ran to its end: runc killed it.
            _ => DeleteResponse {
                pid: Pid::to_proto(state.pid()),
                exit_status: 128 + 9,
                exited_at: Some(ctrd_shim::now()),
            },
        };
        self.publish(&TaskDelete {
            container_id: req.id.clone(),
            pid: response.pid,
            exit_status: response.exit_status,
            exited_at: response.exited_at,
            id: req.id,
        });
        Ok(response)
    }

    async fn pids(&self, id: &str) -> Result<PidsResponse, Error> {
        let runc = self.runc_of(id)?;
        let pids = runc.ps(id).await?;
        let execs: HashMap<Pid, String> = self.with(id, |c| {
            Ok(c.execs
                .values()
                .filter_map(|e| Some((e.state().pid()?, e.exec_id.clone())))
                .collect())
        })?;
        Ok(PidsResponse {
            processes: pids
                .into_iter()
                .filter_map(Pid::from_raw)
                .map(|pid| ProcessInfo {
                    pid: pid.into(),
                    info: execs.get(&pid).map(|exec_id| {
                        ProcessDetails {
                            exec_id: exec_id.clone(),
                        }
                        .to_any()
                    }),
                })
                .collect(),
        })
    }

    /// Pauses (`pause`) or resumes the container.
    async fn freeze(&self, id: &str, pause: bool) -> Result<(), Error> {
        let (runc, state) = self.with(id, |c| Ok((c.runc.clone(), c.init.state())))?;
        let valid = if pause {
            matches!(state, State::Running { .. })
        } else {
            matches!(state, State::Paused { .. })
        };
        if !valid {
            return Err(Error::InvalidState {
                process: process_name(id, ""),
                transition: InvalidTransition {
                    action: if pause { "pause" } else { "resume" },
                    from: state,
                },
            });
        }
        if pause {
            runc.pause(id).await?;
            self.with(id, |c| after_runc(c.init.paused(), id, ""))?;
            self.publish(&TaskPaused {
                container_id: id.to_owned(),
            });
        } else {
            runc.resume(id).await?;
            self.with(id, |c| after_runc(c.init.resumed(), id, ""))?;
            self.publish(&TaskResumed {
                container_id: id.to_owned(),
            });
        }
        Ok(())
    }

    async fn update(&self, req: UpdateTaskRequest) -> Result<(), Error> {
        let runc = self.runc_of(&req.id)?;
        let resources = req
            .resources
            .ok_or_else(|| Error::invalid("resources", "none given"))?;
        let resources = crate::validate::json_object("resources", &resources.value)?;
        Ok(runc.update(&req.id, &resources).await?)
    }

    fn resize_pty(&self, req: ResizePtyRequest) -> Result<(), Error> {
        self.with(&req.id, |c| {
            let console =
                c.process(&req.exec_id)?
                    .console
                    .as_ref()
                    .ok_or_else(|| Error::NoTerminal {
                        process: process_name(&req.id, &req.exec_id),
                    })?;
            console
                .resize(req.width, req.height)
                .map_err(|cause| Error::Io {
                    id: req.id.clone(),
                    context: "resizing the terminal",
                    cause,
                })
        })
    }

    /// The container's figures, read from its cgroup files; from `runc events --stats` only
    /// when its cgroup is unknown or [`STATS_FROM_RUNC`] is set.
    async fn stats(&self, id: &str) -> Result<StatsResponse, Error> {
        let (runc, cgroup) = self.with(id, |c| Ok((c.runc.clone(), c.cgroup.clone())))?;
        if let Some(figures) = cgroup.filter(|_| !stats_from_runc()) {
            let cgroup = figures.cgroup();
            if !cgroup.exists() {
                return Err(Error::CgroupGone {
                    id: id.to_owned(),
                    path: cgroup.main_folder().map(Path::to_owned).unwrap_or_default(),
                });
            }
            return Ok(StatsResponse {
                stats: Some(figures.metrics()),
            });
        }
        let stats = runc.stats(id).await?;
        Ok(StatsResponse {
            stats: Some(metrics::metrics(&stats, metrics::unified_host())),
        })
    }

    async fn checkpoint(&self, req: CheckpointTaskRequest) -> Result<(), Error> {
        let runc = self.runc_of(&req.id)?;
        let opts = match req.options.as_ref() {
            Some(any) if any.type_url.ends_with(RuncCheckpoint::TYPE_URL) => {
                RuncCheckpoint::from_any(any)
                    .map_err(|e| Error::invalid("checkpoint options", e))?
            }
            _ => RuncCheckpoint::default(),
        };
        let image_path = if opts.image_path.is_empty() {
            req.path.clone()
        } else {
            opts.image_path.clone()
        };
        if image_path.is_empty() {
            return Err(Error::invalid("checkpoint", "it needs an image path"));
        }
        runc.checkpoint(
            &req.id,
            &ctrd_runc::CheckpointOptions {
                criu: ctrd_runc::CriuOptions {
                    image_path: PathBuf::from(&image_path),
                    work_path: (!opts.work_path.is_empty()).then(|| PathBuf::from(&opts.work_path)),
                    tcp_established: opts.open_tcp,
                    ext_unix_sk: opts.external_unix_sockets,
                    shell_job: opts.terminal,
                    file_locks: opts.file_locks,
                    manage_cgroups_mode: (!opts.cgroups_mode.is_empty())
                        .then(|| opts.cgroups_mode.clone()),
                    empty_namespaces: opts.empty_namespaces.clone(),
                    ..Default::default()
                },
                leave_running: !opts.exit,
                ..Default::default()
            },
        )
        .await?;
        self.publish(&TaskCheckpointed {
            container_id: req.id,
            checkpoint: image_path,
        });
        Ok(())
    }
}

/// The environment variable that makes `Stats` ask runc (`runc events --stats`, one process
/// per call) instead of reading the cgroup files: set it to `runc` in containerd's
/// environment. It exists to compare the two paths; the files are the default.
pub const STATS_FROM_RUNC: &str = "CTRD_RUNC_SHIM_STATS";

fn stats_from_runc() -> bool {
    static FROM_RUNC: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *FROM_RUNC.get_or_init(|| std::env::var_os(STATS_FROM_RUNC).is_some_and(|v| v == "runc"))
}

/// What `Delete` reports for a process that ended in `state` (no exit for one that never ran).
fn deleted(state: State) -> DeleteResponse {
    let (exit_status, exited_at) = match state {
        State::Stopped { status, at, .. } => (status, Some(at)),
        _ => (0, None),
    };
    DeleteResponse {
        pid: Pid::to_proto(state.pid()),
        exit_status,
        exited_at,
    }
}

fn state_response(id: &str, bundle: &std::path::Path, process: &Process) -> StateResponse {
    let state = process.state();
    let (exit_status, exited_at) = match state {
        State::Stopped { status, at, .. } => (status, Some(at)),
        _ => (0, None),
    };
    StateResponse {
        id: id.to_owned(),
        bundle: bundle.display().to_string(),
        pid: Pid::to_proto(state.pid()),
        status: state.status() as i32,
        stdin: process.stdio.stdin.clone(),
        stdout: process.stdio.stdout.clone(),
        stderr: process.stdio.stderr.clone(),
        terminal: process.stdio.terminal,
        exit_status,
        exited_at,
        exec_id: process.exec_id.clone(),
    }
}

#[ctrd_macros::service(ctrd_api::containerd::task::v2::task_ttrpc_async::Task)]
impl task_ttrpc_async::Task for Service {
    async fn create(
        &self,
        ctx: &TtrpcContext,
        req: CreateTaskRequest,
    ) -> ttrpc::Result<CreateTaskResponse> {
        Ok(deadline::within(ctx, Service::create(self, req)).await?)
    }

    async fn start(&self, ctx: &TtrpcContext, req: StartRequest) -> ttrpc::Result<StartResponse> {
        let started = deadline::within(ctx, async {
            if req.exec_id.is_empty() {
                self.start_init(&req.id).await
            } else {
                self.start_exec(&req.id, &req.exec_id).await
            }
        })
        .await;
        Ok(started?)
    }

    async fn exec(&self, _ctx: &TtrpcContext, req: ExecProcessRequest) -> ttrpc::Result<()> {
        Ok(self.add_exec(req)?)
    }

    async fn state(&self, _ctx: &TtrpcContext, req: StateRequest) -> ttrpc::Result<StateResponse> {
        Ok(self.with(&req.id, |c| {
            Ok(state_response(&req.id, &c.bundle, c.process(&req.exec_id)?))
        })?)
    }

    async fn wait(&self, _ctx: &TtrpcContext, req: WaitRequest) -> ttrpc::Result<WaitResponse> {
        Ok(Service::wait(self, req).await?)
    }

    async fn kill(&self, ctx: &TtrpcContext, req: KillRequest) -> ttrpc::Result<()> {
        Ok(deadline::within(ctx, Service::kill(self, req)).await?)
    }

    async fn delete(
        &self,
        ctx: &TtrpcContext,
        req: DeleteRequest,
    ) -> ttrpc::Result<DeleteResponse> {
        Ok(deadline::within(ctx, Service::delete(self, req)).await?)
    }

    async fn pids(&self, ctx: &TtrpcContext, req: PidsRequest) -> ttrpc::Result<PidsResponse> {
        Ok(deadline::within(ctx, Service::pids(self, &req.id)).await?)
    }

    async fn pause(&self, ctx: &TtrpcContext, req: PauseRequest) -> ttrpc::Result<()> {
        Ok(deadline::within(ctx, self.freeze(&req.id, true)).await?)
    }

    async fn resume(&self, ctx: &TtrpcContext, req: ResumeRequest) -> ttrpc::Result<()> {
        Ok(deadline::within(ctx, self.freeze(&req.id, false)).await?)
    }

    async fn close_io(&self, _ctx: &TtrpcContext, req: CloseIoRequest) -> ttrpc::Result<()> {
        Ok(self.with_mut(&req.id, |c| {
            if req.stdin {
                c.process_mut(&req.exec_id)?.handles.close_stdin();
            }
            Ok(())
        })?)
    }

    async fn update(&self, ctx: &TtrpcContext, req: UpdateTaskRequest) -> ttrpc::Result<()> {
        Ok(deadline::within(ctx, Service::update(self, req)).await?)
    }

    async fn resize_pty(&self, _ctx: &TtrpcContext, req: ResizePtyRequest) -> ttrpc::Result<()> {
        Ok(Service::resize_pty(self, req)?)
    }

    async fn stats(&self, ctx: &TtrpcContext, req: StatsRequest) -> ttrpc::Result<StatsResponse> {
        Ok(deadline::within(ctx, Service::stats(self, &req.id)).await?)
    }

    async fn checkpoint(
        &self,
        ctx: &TtrpcContext,
        req: CheckpointTaskRequest,
    ) -> ttrpc::Result<()> {
        Ok(deadline::within(ctx, Service::checkpoint(self, req)).await?)
    }

    async fn connect(
        &self,
        _ctx: &TtrpcContext,
        req: ConnectRequest,
    ) -> ttrpc::Result<ConnectResponse> {
        let task_pid = self
            .lock()
            .containers
            .get(&req.id)
            .and_then(|c| c.init.state().pid());
        Ok(ConnectResponse {
            shim_pid: std::process::id(),
            task_pid: Pid::to_proto(task_pid),
            version: "2".into(),
        })
    }

    async fn shutdown(&self, _ctx: &TtrpcContext, _req: ShutdownRequest) -> ttrpc::Result<()> {
        if self.lock().containers.is_empty() {
            self.ctx.shutdown.trigger();
        }
        Ok(())
    }
}
