//! The task service: containerd's 17 task calls on runc containers.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use ctrd_api::containerd::events::{
    TaskCreate, TaskDelete, TaskExecAdded, TaskExecStarted, TaskExit, TaskIo, TaskPaused,
    TaskResumed, TaskStart,
};
use ctrd_api::containerd::runc::v1::ProcessDetails;
use ctrd_api::containerd::task::v2::*;
use ctrd_api::containerd::v1::types::ProcessInfo;
use ctrd_api::prost_types::Timestamp;
use ctrd_api::ttrpc::r#async::TtrpcContext;
use ctrd_api::ttrpc::{self, Code};
use ctrd_api::{Event, TypeUrl};
use ctrd_runc::{AsyncRunc, CreateOptions, ExecOptions};
use ctrd_shim::{Exit, ServeContext};

use crate::console::Console;
use crate::process::{Process, State};
use crate::stdio::{self, Stdio};
use crate::{metrics, mount, oom, options};

/// Exits of pids not (yet) known are kept this many at most.
const EARLY_EXITS: usize = 1024;

fn status(code: Code, message: impl ToString) -> ttrpc::Error {
    ttrpc::Error::RpcStatus(ttrpc::get_status(code, message))
}

fn runc_error(e: ctrd_runc::Error) -> ttrpc::Error {
    if e.is_not_found() {
        status(Code::NOT_FOUND, e)
    } else {
        status(Code::UNKNOWN, e)
    }
}

/// A container: its init process, its execs, and what is needed to clean it up.
struct Container {
    bundle: PathBuf,
    rootfs: Option<PathBuf>,
    runc: AsyncRunc,
    init: Process,
    execs: HashMap<String, Process>,
    /// No pid namespace of its own: its processes outlive init unless killed.
    shared_pid_ns: bool,
    /// Init has exited but execs are still being reaped; its exit is published after theirs.
    init_exit: Option<(u32, Timestamp)>,
    /// Created from a checkpoint: `Start` restores it, with the stdio opened at `Create`.
    restore: Option<PendingRestore>,
}

/// What `Start` needs to restore a container created from a checkpoint.
struct PendingRestore {
    image_path: PathBuf,
    io: ctrd_runc::ProcessIo,
    console_socket: Option<ctrd_runc::ConsoleSocket>,
    options: ctrd_api::containerd::runc::v1::Options,
}

impl Container {
    fn process(&self, exec_id: &str) -> ttrpc::Result<&Process> {
        if exec_id.is_empty() {
            Ok(&self.init)
        } else {
            self.execs
                .get(exec_id)
                .ok_or_else(|| status(Code::NOT_FOUND, format!("exec {exec_id} not found")))
        }
    }

    fn process_mut(&mut self, exec_id: &str) -> ttrpc::Result<&mut Process> {
        if exec_id.is_empty() {
            Ok(&mut self.init)
        } else {
            self.execs
                .get_mut(exec_id)
                .ok_or_else(|| status(Code::NOT_FOUND, format!("exec {exec_id} not found")))
        }
    }
}

#[derive(Default)]
struct Shared {
    containers: HashMap<String, Container>,
    early_exits: HashMap<i32, Exit>,
}

/// The runc task service of one shim (one container, or the containers of one group).
#[derive(Clone)]
pub struct Service {
    ctx: ServeContext,
    shared: Arc<Mutex<Shared>>,
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
        self.shared.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn publish<E: Event>(&self, event: &E) {
        if let Err(e) = self.ctx.publisher.publish(event) {
            tracing::warn!(error = %e, "event not published");
        }
    }

    fn runc_of(&self, id: &str) -> ttrpc::Result<AsyncRunc> {
        self.lock()
            .containers
            .get(id)
            .map(|c| c.runc.clone())
            .ok_or_else(|| not_found(id))
    }

    /// Routes an exit to the process it ends; keeps it if the pid is not known yet.
    fn on_exit(&self, exit: Exit) {
        let mut shared = self.lock();
        if !self.apply_exit(&mut shared, exit) {
            if shared.early_exits.len() >= EARLY_EXITS
                && let Some(&old) = shared.early_exits.keys().next()
            {
                shared.early_exits.remove(&old);
            }
            shared.early_exits.insert(exit.pid, exit);
        }
    }

    /// Applies an exit to a known live process; false when no process has that pid.
    fn apply_exit(&self, shared: &mut Shared, exit: Exit) -> bool {
        let pid = exit.pid as u32;
        let at = timestamp(exit.at);
        for (id, container) in shared.containers.iter_mut() {
            if container.init.state().is_live() && container.init.state().pid() == pid {
                if container.shared_pid_ns {
                    let runc = container.runc.clone();
                    let id = id.clone();
                    tokio::spawn(async move {
                        let _ = runc.kill(&id, 9, true).await;
                    });
                }
                if container.execs.values().any(|e| e.state().is_live()) {
                    container.init_exit = Some((exit.status, at));
                } else {
                    self.finish_init(id, container, exit.status, at);
                }
                return true;
            }
            let exec = container
                .execs
                .values()
                .find(|e| e.state().is_live() && e.state().pid() == pid)
                .map(|e| e.exec_id.clone());
            if let Some(exec_id) = exec {
                if let Some(process) = container.execs.get(&exec_id) {
                    let _ = process.stopped(exit.status, at);
                }
                self.publish(&TaskExit {
                    container_id: id.clone(),
                    id: exec_id,
                    pid,
                    exit_status: exit.status,
                    exited_at: Some(at),
                });
                if let Some((status, at)) = container.init_exit
                    && !container.execs.values().any(|e| e.state().is_live())
                {
                    container.init_exit = None;
                    self.finish_init(id, container, status, at);
                }
                return true;
            }
        }
        false
    }

    fn finish_init(&self, id: &str, container: &mut Container, exit_status: u32, at: Timestamp) {
        let pid = container.init.state().pid();
        if container.init.stopped(exit_status, at).is_ok() {
            self.publish(&TaskExit {
                container_id: id.to_owned(),
                id: id.to_owned(),
                pid,
                exit_status,
                exited_at: Some(at),
            });
        }
    }

    /// Restores a container created from a checkpoint; its init's pid.
    async fn restore(
        &self,
        id: &str,
        runc: &AsyncRunc,
        restore: PendingRestore,
        bundle: &Path,
    ) -> ttrpc::Result<u32> {
        let pid = runc
            .restore(
                id,
                bundle,
                ctrd_runc::RestoreOptions {
                    criu: ctrd_runc::CriuOptions {
                        image_path: restore.image_path,
                        work_path: (!restore.options.criu_work_path.is_empty())
                            .then(|| PathBuf::from(&restore.options.criu_work_path)),
                        ..Default::default()
                    },
                    create: CreateOptions {
                        io: Some(restore.io),
                        console_socket: restore
                            .console_socket
                            .as_ref()
                            .map(|s| s.path().to_owned()),
                        pid_file: Some(bundle.join("init.pid")),
                        no_pivot: restore.options.no_pivot_root,
                        no_new_keyring: restore.options.no_new_keyring,
                        ..Default::default()
                    },
                    no_subreaper: false,
                },
            )
            .await
            .map_err(runc_error)?;
        let console = {
            let shared = self.lock();
            let c = shared.containers.get(id);
            match (&restore.console_socket, c) {
                (Some(socket), Some(c)) => Some(attach_console(
                    socket,
                    &c.init.stdio.stdin,
                    &c.init.stdio.stdout,
                )?),
                _ => None,
            }
        };
        if let Some(c) = self.lock().containers.get_mut(id) {
            let _ = c.init.created(pid);
            c.init.console = console;
        }
        self.claim_early_exit(pid);
        Ok(pid)
    }

    /// Applies an exit that arrived before its pid was known.
    fn claim_early_exit(&self, pid: u32) {
        let mut shared = self.lock();
        if let Some(exit) = shared.early_exits.remove(&(pid as i32)) {
            self.apply_exit(&mut shared, exit);
        }
    }
}

/// Receives the terminal runc sent to `socket` and starts copying it to and from the FIFOs.
fn attach_console(
    socket: &ctrd_runc::ConsoleSocket,
    stdin: &str,
    stdout: &str,
) -> ttrpc::Result<Console> {
    let master = socket
        .receive(std::time::Duration::from_secs(10))
        .map_err(|e| status(Code::INTERNAL, e))?;
    Console::attach(master, stdin, stdout)
        .map_err(|e| status(Code::INTERNAL, format!("attaching the terminal: {e}")))
}

fn not_found(id: &str) -> ttrpc::Error {
    status(Code::NOT_FOUND, format!("container {id} not found"))
}

/// The container `id`, or NOT_FOUND.
fn container<'a>(shared: &'a Shared, id: &str) -> ttrpc::Result<&'a Container> {
    shared.containers.get(id).ok_or_else(|| not_found(id))
}

/// The container `id`, mutable, or NOT_FOUND.
fn container_mut<'a>(shared: &'a mut Shared, id: &str) -> ttrpc::Result<&'a mut Container> {
    shared.containers.get_mut(id).ok_or_else(|| not_found(id))
}

fn timestamp(at: std::time::SystemTime) -> Timestamp {
    let d = at.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    Timestamp {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos() as i32,
    }
}

/// Whether the bundle's spec gives the container a pid namespace of its own.
fn has_pid_namespace(bundle: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(bundle.join("config.json")) else {
        return true;
    };
    let spec: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    spec["linux"]["namespaces"].as_array().is_some_and(|ns| {
        ns.iter()
            .any(|n| n["type"] == "pid" && n["path"].as_str().unwrap_or("").is_empty())
    })
}

fn state_response(id: &str, bundle: &Path, process: &Process) -> StateResponse {
    let state = process.state();
    let (exit_status, exited_at) = match state {
        State::Stopped { status, at, .. } => (status, Some(at)),
        _ => (0, None),
    };
    StateResponse {
        id: id.to_owned(),
        bundle: bundle.display().to_string(),
        pid: state.pid(),
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
        _ctx: &TtrpcContext,
        req: CreateTaskRequest,
    ) -> ttrpc::Result<CreateTaskResponse> {
        ctrd_runc::validate_id(&req.id).map_err(|e| status(Code::INVALID_ARGUMENT, e))?;
        if self.lock().containers.contains_key(&req.id) {
            return Err(status(
                Code::ALREADY_EXISTS,
                format!("container {} exists", req.id),
            ));
        }
        let bundle = PathBuf::from(&req.bundle);
        let opts = options::decode(req.options.as_ref());
        options::save(&opts, &bundle)
            .map_err(|e| status(Code::INTERNAL, format!("saving options: {e}")))?;
        let runc = options::runc(&opts, &self.ctx.namespace, &bundle, Some(&self.ctx.reaper));

        let rootfs = if req.rootfs.is_empty() {
            None
        } else {
            let dir = bundle.join("rootfs");
            std::fs::create_dir_all(&dir)
                .map_err(|e| status(Code::INTERNAL, format!("{}: {e}", dir.display())))?;
            mount::mount_all(&req.rootfs, &dir).map_err(|e| status(Code::INTERNAL, e))?;
            Some(dir)
        };
        let unmount = |rootfs: &Option<PathBuf>| {
            if let Some(dir) = rootfs {
                mount::unmount_all(dir);
            }
        };
        let io = Stdio {
            stdin: req.stdin.clone(),
            stdout: req.stdout.clone(),
            stderr: req.stderr.clone(),
            terminal: req.terminal,
        };
        let owner = (opts.io_uid != 0 || opts.io_gid != 0).then_some((opts.io_uid, opts.io_gid));
        let (process_io, handles) = match stdio::open(
            &io,
            owner,
            &stdio::LogDriverContext {
                id: &req.id,
                namespace: &self.ctx.namespace,
                reaper: &self.ctx.reaper,
            },
        )
        .await
        {
            Ok(opened) => opened,
            Err(e) => {
                unmount(&rootfs);
                return Err(status(Code::INVALID_ARGUMENT, e.0));
            }
        };
        let console_socket = match req.terminal.then(ctrd_runc::ConsoleSocket::new).transpose() {
            Ok(socket) => socket,
            Err(e) => {
                unmount(&rootfs);
                return Err(status(Code::INTERNAL, e));
            }
        };
        if !req.checkpoint.is_empty() {
            // Restored at Start, as containerd expects a created task first.
            let mut init = Process::new(String::new(), io, None, State::Defined);
            init.handles = handles;
            self.lock().containers.insert(
                req.id.clone(),
                Container {
                    shared_pid_ns: !has_pid_namespace(&bundle),
                    bundle,
                    rootfs,
                    runc,
                    init,
                    execs: HashMap::new(),
                    init_exit: None,
                    restore: Some(PendingRestore {
                        image_path: PathBuf::from(&req.checkpoint),
                        io: process_io,
                        console_socket,
                        options: opts,
                    }),
                },
            );
            self.publish(&TaskCreate {
                container_id: req.id,
                bundle: req.bundle,
                rootfs: req.rootfs,
                io: Some(TaskIo {
                    stdin: req.stdin,
                    stdout: req.stdout,
                    stderr: req.stderr,
                    terminal: req.terminal,
                }),
                checkpoint: req.checkpoint,
                pid: 0,
            });
            return Ok(CreateTaskResponse { pid: 0 });
        }
        let created = runc
            .create(
                &req.id,
                &bundle,
                CreateOptions {
                    io: Some(process_io),
                    console_socket: console_socket.as_ref().map(|s| s.path().to_owned()),
                    pid_file: Some(bundle.join("init.pid")),
                    no_pivot: opts.no_pivot_root,
                    no_new_keyring: opts.no_new_keyring,
                    ..Default::default()
                },
            )
            .await;
        let pid = match created {
            Ok(pid) => pid,
            Err(e) => {
                unmount(&rootfs);
                return Err(runc_error(e));
            }
        };
        let mut init = Process::new(String::new(), io, None, State::Defined);
        init.handles = handles;
        if let Some(socket) = &console_socket {
            match attach_console(socket, &req.stdin, &req.stdout) {
                Ok(console) => init.console = Some(console),
                Err(e) => {
                    let _ = runc.delete(&req.id, true).await;
                    unmount(&rootfs);
                    return Err(e);
                }
            }
        }
        let _ = init.created(pid);
        self.lock().containers.insert(
            req.id.clone(),
            Container {
                shared_pid_ns: !has_pid_namespace(&bundle),
                bundle,
                rootfs,
                runc,
                init,
                execs: HashMap::new(),
                init_exit: None,
                restore: None,
            },
        );
        self.claim_early_exit(pid);
        self.publish(&TaskCreate {
            container_id: req.id,
            bundle: req.bundle,
            rootfs: req.rootfs,
            io: Some(TaskIo {
                stdin: req.stdin,
                stdout: req.stdout,
                stderr: req.stderr,
                terminal: req.terminal,
            }),
            checkpoint: req.checkpoint,
            pid,
        });
        Ok(CreateTaskResponse { pid })
    }

    async fn start(&self, _ctx: &TtrpcContext, req: StartRequest) -> ttrpc::Result<StartResponse> {
        let runc = self.runc_of(&req.id)?;
        if req.exec_id.is_empty() {
            let pid = {
                let shared = self.lock();
                let c = container(&shared, &req.id)?;
                match c.init.state() {
                    State::Created { pid } => pid,
                    State::Defined if c.restore.is_some() => 0,
                    other => {
                        return Err(status(
                            Code::FAILED_PRECONDITION,
                            format!("cannot start a task that is {:?}", other.status()),
                        ));
                    }
                }
            };
            let pending = self
                .lock()
                .containers
                .get_mut(&req.id)
                .and_then(|c| c.restore.take().map(|r| (r, c.bundle.clone())));
            let pid = match pending {
                Some((restore, bundle)) => self.restore(&req.id, &runc, restore, &bundle).await?,
                None => {
                    runc.start(&req.id).await.map_err(runc_error)?;
                    pid
                }
            };
            if let Some(c) = self.lock().containers.get(&req.id) {
                let _ = c.init.started(pid);
            }
            oom::watch(pid, req.id.clone(), self.ctx.publisher.clone());
            self.publish(&TaskStart {
                container_id: req.id,
                pid,
            });
            return Ok(StartResponse { pid });
        }

        let (spec, io, bundle) = {
            let shared = self.lock();
            let c = container(&shared, &req.id)?;
            if !matches!(c.init.state(), State::Running { .. }) || c.init_exit.is_some() {
                return Err(status(
                    Code::FAILED_PRECONDITION,
                    format!("container {} is not running", req.id),
                ));
            }
            let exec = c.process(&req.exec_id)?;
            if exec.state() != State::Defined {
                return Err(status(
                    Code::FAILED_PRECONDITION,
                    format!("exec {} was started already", req.exec_id),
                ));
            }
            (
                exec.spec.clone().unwrap_or_default(),
                exec.stdio.clone(),
                c.bundle.clone(),
            )
        };
        let process: ctrd_runc::spec::Process = serde_json::from_slice(&spec)
            .map_err(|e| status(Code::INVALID_ARGUMENT, format!("exec spec: {e}")))?;
        let (process_io, handles) = stdio::open(
            &io,
            None,
            &stdio::LogDriverContext {
                id: &req.id,
                namespace: &self.ctx.namespace,
                reaper: &self.ctx.reaper,
            },
        )
        .await
        .map_err(|e| status(Code::INVALID_ARGUMENT, e.0))?;
        let console_socket = io
            .terminal
            .then(ctrd_runc::ConsoleSocket::new)
            .transpose()
            .map_err(|e| status(Code::INTERNAL, e))?;
        let pid = runc
            .exec_detached(
                &req.id,
                &process,
                ExecOptions {
                    io: Some(process_io),
                    console_socket: console_socket.as_ref().map(|s| s.path().to_owned()),
                    pid_file: Some(bundle.join(format!("{}.pid", req.exec_id))),
                    ..Default::default()
                },
            )
            .await
            .map_err(runc_error)?;
        let console = match &console_socket {
            Some(socket) => Some(attach_console(socket, &io.stdin, &io.stdout)?),
            None => None,
        };
        if let Some(exec) = self
            .lock()
            .containers
            .get_mut(&req.id)
            .and_then(|c| c.execs.get_mut(&req.exec_id))
        {
            exec.handles = handles;
            exec.console = console;
            let _ = exec.started(pid);
        }
        self.claim_early_exit(pid);
        self.publish(&TaskExecStarted {
            container_id: req.id,
            exec_id: req.exec_id,
            pid,
        });
        Ok(StartResponse { pid })
    }

    async fn exec(&self, _ctx: &TtrpcContext, req: ExecProcessRequest) -> ttrpc::Result<()> {
        ctrd_runc::validate_id(&req.exec_id).map_err(|e| status(Code::INVALID_ARGUMENT, e))?;
        let spec = req
            .spec
            .map(|s| s.value)
            .ok_or_else(|| status(Code::INVALID_ARGUMENT, "exec needs a process spec"))?;
        {
            let mut shared = self.lock();
            let c = container_mut(&mut shared, &req.id)?;
            if c.execs.contains_key(&req.exec_id) {
                return Err(status(
                    Code::ALREADY_EXISTS,
                    format!("exec {} exists", req.exec_id),
                ));
            }
            if !c.init.state().is_live() || c.init_exit.is_some() {
                return Err(status(
                    Code::FAILED_PRECONDITION,
                    format!("container {} is not running", req.id),
                ));
            }
            let io = Stdio {
                stdin: req.stdin,
                stdout: req.stdout,
                stderr: req.stderr,
                terminal: req.terminal,
            };
            c.execs.insert(
                req.exec_id.clone(),
                Process::new(req.exec_id.clone(), io, Some(spec), State::Defined),
            );
        }
        self.publish(&TaskExecAdded {
            container_id: req.id,
            exec_id: req.exec_id,
        });
        Ok(())
    }

    async fn state(&self, _ctx: &TtrpcContext, req: StateRequest) -> ttrpc::Result<StateResponse> {
        let shared = self.lock();
        let c = container(&shared, &req.id)?;
        Ok(state_response(&req.id, &c.bundle, c.process(&req.exec_id)?))
    }

    async fn wait(&self, _ctx: &TtrpcContext, req: WaitRequest) -> ttrpc::Result<WaitResponse> {
        let mut rx = {
            let shared = self.lock();
            let c = container(&shared, &req.id)?;
            c.process(&req.exec_id)?.exited()
        };
        let state = *rx
            .wait_for(|s| matches!(s, State::Stopped { .. }))
            .await
            .map_err(|_| status(Code::NOT_FOUND, "the process was deleted"))?;
        match state {
            State::Stopped { status, at, .. } => Ok(WaitResponse {
                exit_status: status,
                exited_at: Some(at),
            }),
            _ => Err(status(Code::INTERNAL, "not stopped")),
        }
    }

    async fn kill(&self, _ctx: &TtrpcContext, req: KillRequest) -> ttrpc::Result<()> {
        let (runc, state) = {
            let shared = self.lock();
            let c = container(&shared, &req.id)?;
            (c.runc.clone(), c.process(&req.exec_id)?.state())
        };
        if !state.is_live() {
            return Err(status(Code::NOT_FOUND, "process already finished"));
        }
        if req.exec_id.is_empty() {
            runc.kill(&req.id, req.signal as i32, req.all)
                .await
                .map_err(runc_error)
        } else {
            let signal = nix::sys::signal::Signal::try_from(req.signal as i32)
                .map_err(|e| status(Code::INVALID_ARGUMENT, e))?;
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(state.pid() as i32), signal)
                .map_err(|e| status(Code::NOT_FOUND, format!("signalling exec: {e}")))
        }
    }

    async fn delete(
        &self,
        _ctx: &TtrpcContext,
        req: DeleteRequest,
    ) -> ttrpc::Result<DeleteResponse> {
        if !req.exec_id.is_empty() {
            let mut shared = self.lock();
            let c = container_mut(&mut shared, &req.id)?;
            let state = c.process(&req.exec_id)?.state();
            if state.is_live() {
                return Err(status(Code::FAILED_PRECONDITION, "the exec is running"));
            }
            c.execs.remove(&req.exec_id);
            let (exit_status, exited_at) = match state {
                State::Stopped { status, at, .. } => (status, Some(at)),
                _ => (0, None),
            };
            return Ok(DeleteResponse {
                pid: state.pid(),
                exit_status,
                exited_at,
            });
        }
        let (runc, state) = {
            let shared = self.lock();
            let c = container(&shared, &req.id)?;
            (c.runc.clone(), c.init.state())
        };
        if matches!(state, State::Running { .. } | State::Paused { .. }) {
            return Err(status(
                Code::FAILED_PRECONDITION,
                format!("task {} is running", req.id),
            ));
        }
        if let Err(e) = runc.delete(&req.id, true).await
            && !e.is_not_found()
        {
            return Err(runc_error(e));
        }
        let container = self.lock().containers.remove(&req.id);
        if let Some(dir) = container.as_ref().and_then(|c| c.rootfs.as_ref()) {
            mount::unmount_all(dir);
        }
        let (exit_status, exited_at) = match state {
            State::Stopped { status, at, .. } => (status, Some(at)),
            _ => (128 + 9, Some(ctrd_shim::now())),
        };
        self.publish(&TaskDelete {
            container_id: req.id.clone(),
            pid: state.pid(),
            exit_status,
            exited_at,
            id: req.id,
        });
        Ok(DeleteResponse {
            pid: state.pid(),
            exit_status,
            exited_at,
        })
    }

    async fn pids(&self, _ctx: &TtrpcContext, req: PidsRequest) -> ttrpc::Result<PidsResponse> {
        let runc = self.runc_of(&req.id)?;
        let pids = runc.ps(&req.id).await.map_err(runc_error)?;
        let execs: HashMap<u32, String> = self
            .lock()
            .containers
            .get(&req.id)
            .map(|c| {
                c.execs
                    .values()
                    .map(|e| (e.state().pid(), e.exec_id.clone()))
                    .collect()
            })
            .unwrap_or_default();
        Ok(PidsResponse {
            processes: pids
                .into_iter()
                .map(|pid| ProcessInfo {
                    pid: pid as u32,
                    info: execs.get(&(pid as u32)).map(|exec_id| {
                        ProcessDetails {
                            exec_id: exec_id.clone(),
                        }
                        .to_any()
                    }),
                })
                .collect(),
        })
    }

    async fn pause(&self, _ctx: &TtrpcContext, req: PauseRequest) -> ttrpc::Result<()> {
        let runc = self.runc_of(&req.id)?;
        runc.pause(&req.id).await.map_err(runc_error)?;
        if let Some(c) = self.lock().containers.get(&req.id) {
            let _ = c.init.paused();
        }
        self.publish(&TaskPaused {
            container_id: req.id,
        });
        Ok(())
    }

    async fn resume(&self, _ctx: &TtrpcContext, req: ResumeRequest) -> ttrpc::Result<()> {
        let runc = self.runc_of(&req.id)?;
        runc.resume(&req.id).await.map_err(runc_error)?;
        if let Some(c) = self.lock().containers.get(&req.id) {
            let _ = c.init.resumed();
        }
        self.publish(&TaskResumed {
            container_id: req.id,
        });
        Ok(())
    }

    async fn close_io(&self, _ctx: &TtrpcContext, req: CloseIoRequest) -> ttrpc::Result<()> {
        let mut shared = self.lock();
        let c = container_mut(&mut shared, &req.id)?;
        if req.stdin {
            c.process_mut(&req.exec_id)?.handles.close_stdin();
        }
        Ok(())
    }

    async fn update(&self, _ctx: &TtrpcContext, req: UpdateTaskRequest) -> ttrpc::Result<()> {
        let runc = self.runc_of(&req.id)?;
        let resources = req
            .resources
            .ok_or_else(|| status(Code::INVALID_ARGUMENT, "no resources"))?;
        let resources: ctrd_runc::spec::LinuxResources =
            serde_json::from_slice(&resources.value)
                .map_err(|e| status(Code::INVALID_ARGUMENT, format!("resources: {e}")))?;
        runc.update(&req.id, &resources).await.map_err(runc_error)
    }

    async fn resize_pty(&self, _ctx: &TtrpcContext, req: ResizePtyRequest) -> ttrpc::Result<()> {
        let shared = self.lock();
        let c = container(&shared, &req.id)?;
        let console = c
            .process(&req.exec_id)?
            .console
            .as_ref()
            .ok_or_else(|| status(Code::FAILED_PRECONDITION, "the process has no terminal"))?;
        console
            .resize(req.width, req.height)
            .map_err(|e| status(Code::INTERNAL, format!("resizing the terminal: {e}")))
    }

    async fn stats(&self, _ctx: &TtrpcContext, req: StatsRequest) -> ttrpc::Result<StatsResponse> {
        let runc = self.runc_of(&req.id)?;
        let stats = runc.stats(&req.id).await.map_err(runc_error)?;
        Ok(StatsResponse {
            stats: Some(metrics::metrics(&stats, metrics::unified_host())),
        })
    }

    async fn checkpoint(
        &self,
        _ctx: &TtrpcContext,
        req: CheckpointTaskRequest,
    ) -> ttrpc::Result<()> {
        use ctrd_api::containerd::runc::v1::CheckpointOptions as RuncCheckpoint;
        let runc = self.runc_of(&req.id)?;
        let opts = match req.options.as_ref() {
            Some(any) if any.type_url.ends_with(RuncCheckpoint::TYPE_URL) => {
                RuncCheckpoint::from_any(any).map_err(|e| status(Code::INVALID_ARGUMENT, e))?
            }
            _ => RuncCheckpoint::default(),
        };
        let image_path = if opts.image_path.is_empty() {
            req.path.clone()
        } else {
            opts.image_path.clone()
        };
        if image_path.is_empty() {
            return Err(status(
                Code::INVALID_ARGUMENT,
                "a checkpoint needs an image path",
            ));
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
        .await
        .map_err(runc_error)?;
        self.publish(&ctrd_api::containerd::events::TaskCheckpointed {
            container_id: req.id,
            checkpoint: image_path,
        });
        Ok(())
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
            .map(|c| c.init.state().pid())
            .unwrap_or(0);
        Ok(ConnectResponse {
            shim_pid: std::process::id(),
            task_pid,
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
