//! A minimal but real shim on `ctrd-shim`: it runs the container's processes chrooted into the
//! bundle's rootfs (no namespaces, no cgroups), with their output on containerd's FIFOs.
//! Install it as `containerd-shim-chroot-v2` and run `ctr run --runtime io.containerd.chroot.v2
//! --rootfs DIR id cmd...`, then `ctr task exec --exec-id E id cmd...` into it. It answers
//! create, start, exec, state, wait, kill, pids, delete, connect and shutdown, and publishes
//! TaskCreate, TaskStart, TaskExecAdded, TaskExecStarted, TaskExit and TaskDelete.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

use ctrd_api::containerd::events::{
    TaskCreate, TaskDelete, TaskExecAdded, TaskExecStarted, TaskExit, TaskStart,
};
use ctrd_api::containerd::task::v2::*;
use ctrd_api::containerd::v1::types::Status;
use ctrd_api::prost_types::Timestamp;
use ctrd_api::ttrpc::r#async::TtrpcContext;
use ctrd_api::ttrpc::{self, Code};
use ctrd_shim::{Error, ServeContext, Shim};
use tokio::sync::watch;

struct ChrootShim;

/// One process of a task: its init (exec id "") or an exec.
#[derive(Clone)]
struct Proc {
    args: Vec<String>,
    env: Vec<String>,
    cwd: String,
    stdout: String,
    stderr: String,
    pid: u32,
    /// `None` while running, then the exit status and time.
    exit: watch::Sender<Option<(u32, Timestamp)>>,
}

impl Proc {
    /// A process to run from an OCI `process` object.
    fn from_spec(
        process: &serde_json::Value,
        stdout: String,
        stderr: String,
    ) -> ttrpc::Result<Proc> {
        if process["terminal"].as_bool() == Some(true) {
            return Err(status(
                Code::UNIMPLEMENTED,
                "the chroot example has no terminals",
            ));
        }
        let strings = |v: &serde_json::Value| -> Vec<String> {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        Ok(Proc {
            args: strings(&process["args"]),
            env: strings(&process["env"]),
            cwd: process["cwd"].as_str().unwrap_or("/").to_owned(),
            stdout,
            stderr,
            pid: 0,
            exit: watch::channel(None).0,
        })
    }

    fn status(&self) -> Status {
        match (self.exit.borrow().is_some(), self.pid) {
            (true, _) => Status::Stopped,
            (false, 0) => Status::Created,
            (false, _) => Status::Running,
        }
    }
}

/// A container: its rootfs and its processes by exec id.
struct Task {
    bundle: PathBuf,
    rootfs: PathBuf,
    procs: HashMap<String, Proc>,
}

struct Service {
    ctx: ServeContext,
    tasks: Mutex<HashMap<String, Task>>,
}

fn status(code: Code, message: impl ToString) -> ttrpc::Error {
    ttrpc::Error::RpcStatus(ttrpc::get_status(code, message))
}

impl Service {
    /// Runs `f` on the task `id`.
    fn with_task<T>(
        &self,
        id: &str,
        f: impl FnOnce(&mut Task) -> ttrpc::Result<T>,
    ) -> ttrpc::Result<T> {
        let mut tasks = self
            .tasks
            .lock()
            .map_err(|_| status(Code::INTERNAL, "lock"))?;
        let task = tasks
            .get_mut(id)
            .ok_or_else(|| status(Code::NOT_FOUND, format!("task {id} not found")))?;
        f(task)
    }

    /// The task's rootfs and a copy of its process `exec_id`.
    fn proc(&self, id: &str, exec_id: &str) -> ttrpc::Result<(PathBuf, Proc)> {
        self.with_task(id, |task| {
            let proc =
                task.procs.get(exec_id).cloned().ok_or_else(|| {
                    status(Code::NOT_FOUND, format!("process {exec_id} not found"))
                })?;
            Ok((task.rootfs.clone(), proc))
        })
    }

    fn publish<E: ctrd_api::Event>(&self, event: &E) {
        if let Err(e) = self.ctx.publisher.publish(event) {
            tracing::warn!(error = %e, "event dropped");
        }
    }

    /// Starts process `exec_id` of task `id`, chrooted into the rootfs; its exit is recorded
    /// and published when the reaper collects it.
    fn spawn(&self, id: &str, exec_id: &str) -> ttrpc::Result<u32> {
        let (rootfs, proc) = self.proc(id, exec_id)?;
        if proc.pid != 0 {
            return Err(status(Code::FAILED_PRECONDITION, "already started"));
        }
        let Some((program, rest)) = proc.args.split_first() else {
            return Err(status(
                Code::INVALID_ARGUMENT,
                "the spec has no process args",
            ));
        };
        let mut command = Command::new(program);
        command
            .args(rest)
            .env_clear()
            .envs(proc.env.iter().filter_map(|kv| kv.split_once('=')))
            .stdin(Stdio::null())
            .stdout(fifo(&proc.stdout)?)
            .stderr(fifo(&proc.stderr)?);
        let cwd = proc.cwd.clone();
        // SAFETY: between fork and exec the hook calls only chroot and chdir, which are
        // async-signal-safe, on paths prepared before the fork.
        unsafe {
            command.pre_exec(move || {
                std::os::unix::fs::chroot(&rootfs)?;
                std::env::set_current_dir(&cwd)
            });
        }
        // Subscribe before spawning, so the exit cannot be missed however soon it comes.
        let mut exits = self.ctx.reaper.subscribe();
        let child = command
            .spawn()
            .map_err(|e| status(Code::INTERNAL, format!("starting {program}: {e}")))?;
        let pid = child.id();
        drop(child); // the reaper collects it
        self.with_task(id, |task| {
            if let Some(p) = task.procs.get_mut(exec_id) {
                p.pid = pid;
            }
            Ok(())
        })?;
        let (publisher, id, exec_id, exit) = (
            self.ctx.publisher.clone(),
            id.to_owned(),
            exec_id.to_owned(),
            proc.exit.clone(),
        );
        tokio::spawn(async move {
            while let Some(e) = exits.recv().await {
                if u32::from(e.pid) == pid {
                    let at = ctrd_shim::now();
                    exit.send_replace(Some((e.status, at)));
                    let _ = publisher.publish(&TaskExit {
                        id: if exec_id.is_empty() {
                            id.clone()
                        } else {
                            exec_id
                        },
                        container_id: id,
                        pid,
                        exit_status: e.status,
                        exited_at: Some(at),
                    });
                    break;
                }
            }
        });
        Ok(pid)
    }
}

/// The bundle's spec, and the rootfs it names.
fn read_spec(bundle: &Path) -> ttrpc::Result<(PathBuf, serde_json::Value)> {
    let text = std::fs::read_to_string(bundle.join("config.json"))
        .map_err(|e| status(Code::INVALID_ARGUMENT, format!("reading config.json: {e}")))?;
    let spec: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| status(Code::INVALID_ARGUMENT, format!("config.json: {e}")))?;
    let root = spec["root"]["path"].as_str().unwrap_or("rootfs");
    let rootfs = if Path::new(root).is_absolute() {
        PathBuf::from(root)
    } else {
        bundle.join(root)
    };
    Ok((rootfs, spec))
}

fn fifo(path: &str) -> ttrpc::Result<Stdio> {
    if path.is_empty() {
        return Ok(Stdio::null());
    }
    let file: File = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| status(Code::INTERNAL, format!("opening {path}: {e}")))?;
    Ok(Stdio::from(file))
}

#[ctrd_macros::service(ctrd_api::containerd::task::v2::task_ttrpc_async::Task)]
impl task_ttrpc_async::Task for Service {
    async fn create(
        &self,
        _ctx: &TtrpcContext,
        req: CreateTaskRequest,
    ) -> ttrpc::Result<CreateTaskResponse> {
        if !req.rootfs.is_empty() {
            return Err(status(
                Code::UNIMPLEMENTED,
                "the chroot example takes --rootfs only",
            ));
        }
        let bundle = PathBuf::from(&req.bundle);
        let (rootfs, spec) = read_spec(&bundle)?;
        let init = Proc::from_spec(&spec["process"], req.stdout.clone(), req.stderr.clone())?;
        self.tasks
            .lock()
            .map_err(|_| status(Code::INTERNAL, "lock"))?
            .insert(
                req.id.clone(),
                Task {
                    bundle,
                    rootfs,
                    procs: HashMap::from([(String::new(), init)]),
                },
            );
        self.publish(&TaskCreate {
            container_id: req.id,
            bundle: req.bundle,
            rootfs: req.rootfs,
            io: Some(ctrd_api::containerd::events::TaskIo {
                stdin: req.stdin,
                stdout: req.stdout,
                stderr: req.stderr,
                terminal: req.terminal,
            }),
            checkpoint: req.checkpoint,
            pid: 0,
        });
        Ok(CreateTaskResponse { pid: 0 })
    }

    async fn start(&self, _ctx: &TtrpcContext, req: StartRequest) -> ttrpc::Result<StartResponse> {
        let pid = self.spawn(&req.id, &req.exec_id)?;
        if req.exec_id.is_empty() {
            self.publish(&TaskStart {
                container_id: req.id,
                pid,
            });
        } else {
            self.publish(&TaskExecStarted {
                container_id: req.id,
                exec_id: req.exec_id,
                pid,
            });
        }
        Ok(StartResponse { pid })
    }

    async fn exec(&self, _ctx: &TtrpcContext, req: ExecProcessRequest) -> ttrpc::Result<()> {
        if req.exec_id.is_empty() {
            return Err(status(Code::INVALID_ARGUMENT, "an exec needs an id"));
        }
        let spec: serde_json::Value = req
            .spec
            .as_ref()
            .map(|any| serde_json::from_slice(&any.value))
            .transpose()
            .map_err(|e| status(Code::INVALID_ARGUMENT, format!("exec spec: {e}")))?
            .ok_or_else(|| status(Code::INVALID_ARGUMENT, "exec needs a process spec"))?;
        let proc = Proc::from_spec(&spec, req.stdout, req.stderr)?;
        self.with_task(&req.id, |task| {
            if task.procs.contains_key(&req.exec_id) {
                return Err(status(
                    Code::ALREADY_EXISTS,
                    format!("exec {} exists", req.exec_id),
                ));
            }
            task.procs.insert(req.exec_id.clone(), proc);
            Ok(())
        })?;
        self.publish(&TaskExecAdded {
            container_id: req.id,
            exec_id: req.exec_id,
        });
        Ok(())
    }

    async fn state(&self, _ctx: &TtrpcContext, req: StateRequest) -> ttrpc::Result<StateResponse> {
        let bundle = self.with_task(&req.id, |task| Ok(task.bundle.clone()))?;
        let (_, proc) = self.proc(&req.id, &req.exec_id)?;
        let exit = *proc.exit.borrow();
        Ok(StateResponse {
            id: req.id,
            exec_id: req.exec_id,
            bundle: bundle.display().to_string(),
            pid: proc.pid,
            status: proc.status() as i32,
            stdout: proc.stdout,
            stderr: proc.stderr,
            exit_status: exit.as_ref().map_or(0, |e| e.0),
            exited_at: exit.map(|e| e.1),
            ..Default::default()
        })
    }

    async fn wait(&self, _ctx: &TtrpcContext, req: WaitRequest) -> ttrpc::Result<WaitResponse> {
        let mut rx = self.proc(&req.id, &req.exec_id)?.1.exit.subscribe();
        let done = rx
            .wait_for(|e| e.is_some())
            .await
            .map_err(|_| status(Code::INTERNAL, "process vanished"))?;
        let done = *done;
        let (exit_status, at) = done.ok_or_else(|| status(Code::INTERNAL, "no exit"))?;
        Ok(WaitResponse {
            exit_status,
            exited_at: Some(at),
        })
    }

    async fn kill(&self, _ctx: &TtrpcContext, req: KillRequest) -> ttrpc::Result<()> {
        let (_, proc) = self.proc(&req.id, &req.exec_id)?;
        if proc.status() == Status::Running {
            let signal = nix::sys::signal::Signal::try_from(req.signal as i32)
                .map_err(|e| status(Code::INVALID_ARGUMENT, e))?;
            ctrd_shim::Pid::try_from(proc.pid)
                .map_err(|e| status(Code::INTERNAL, e))?
                .signal(signal)
                .map_err(|e| status(Code::INTERNAL, e))?;
        }
        Ok(())
    }

    async fn pids(&self, _ctx: &TtrpcContext, req: PidsRequest) -> ttrpc::Result<PidsResponse> {
        self.with_task(&req.id, |task| {
            Ok(PidsResponse {
                processes: task
                    .procs
                    .values()
                    .filter(|p| p.status() == Status::Running)
                    .map(|p| ctrd_api::containerd::v1::types::ProcessInfo {
                        pid: p.pid,
                        info: None,
                    })
                    .collect(),
            })
        })
    }

    async fn delete(
        &self,
        _ctx: &TtrpcContext,
        req: DeleteRequest,
    ) -> ttrpc::Result<DeleteResponse> {
        let (_, proc) = self.proc(&req.id, &req.exec_id)?;
        if proc.status() == Status::Running {
            return Err(status(Code::FAILED_PRECONDITION, "the process is running"));
        }
        if req.exec_id.is_empty() {
            self.tasks
                .lock()
                .map_err(|_| status(Code::INTERNAL, "lock"))?
                .remove(&req.id);
        } else {
            self.with_task(&req.id, |task| Ok(task.procs.remove(&req.exec_id)))?;
        }
        let exit = *proc.exit.borrow();
        let (exit_status, exited_at) = exit.map_or((0, None), |(s, at)| (s, Some(at)));
        if req.exec_id.is_empty() {
            self.publish(&TaskDelete {
                container_id: req.id.clone(),
                pid: proc.pid,
                exit_status,
                exited_at,
                id: req.id,
            });
        }
        Ok(DeleteResponse {
            pid: proc.pid,
            exit_status,
            exited_at,
        })
    }

    async fn connect(
        &self,
        _ctx: &TtrpcContext,
        req: ConnectRequest,
    ) -> ttrpc::Result<ConnectResponse> {
        let task_pid = self.proc(&req.id, "").map(|(_, p)| p.pid).unwrap_or(0);
        Ok(ConnectResponse {
            shim_pid: std::process::id(),
            task_pid,
            version: "2".into(),
        })
    }

    async fn shutdown(&self, _ctx: &TtrpcContext, _req: ShutdownRequest) -> ttrpc::Result<()> {
        let empty = self.tasks.lock().map(|t| t.is_empty()).unwrap_or(false);
        if empty {
            self.ctx.shutdown.trigger();
        }
        Ok(())
    }
}

impl Shim for ChrootShim {
    type Task = Service;
    const NAME: &'static str = "containerd-shim-chroot-v2";

    async fn task(ctx: ServeContext) -> Result<Service, Error> {
        Ok(Service {
            ctx,
            tasks: Mutex::new(HashMap::new()),
        })
    }
}

fn main() -> std::process::ExitCode {
    ctrd_shim::run::<ChrootShim>()
}
