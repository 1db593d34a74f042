//! A minimal but real shim on `ctrd-shim`: it runs the container's process chrooted into the
//! bundle's rootfs (no namespaces, no cgroups), with its output on containerd's FIFOs.
//! Install it as `containerd-shim-chroot-v2` and run `ctr run --runtime io.containerd.chroot.v2
//! --rootfs DIR id cmd...`. It answers create, start, state, wait, kill, pids, delete, connect
//! and shutdown, and publishes TaskCreate, TaskStart, TaskExit and TaskDelete.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

use ctrd_api::containerd::events::{TaskCreate, TaskDelete, TaskExit, TaskStart};
use ctrd_api::containerd::task::v2::*;
use ctrd_api::containerd::v1::types::Status;
use ctrd_api::prost_types::Timestamp;
use ctrd_api::ttrpc::r#async::TtrpcContext;
use ctrd_api::ttrpc::{self, Code};
use ctrd_shim::{Error, ServeContext, Shim};
use tokio::sync::watch;

struct ChrootShim;

#[derive(Clone)]
struct Task {
    bundle: PathBuf,
    rootfs: PathBuf,
    args: Vec<String>,
    env: Vec<String>,
    cwd: String,
    stdout: String,
    stderr: String,
    pid: u32,
    /// `None` while running, then the exit status and time.
    exit: watch::Sender<Option<(u32, Timestamp)>>,
}

struct Service {
    ctx: ServeContext,
    tasks: Mutex<HashMap<String, Task>>,
}

fn status(code: Code, message: impl ToString) -> ttrpc::Error {
    ttrpc::Error::RpcStatus(ttrpc::get_status(code, message))
}

impl Service {
    fn task(&self, id: &str) -> ttrpc::Result<Task> {
        let tasks = self
            .tasks
            .lock()
            .map_err(|_| status(Code::INTERNAL, "lock"))?;
        tasks
            .get(id)
            .cloned()
            .ok_or_else(|| status(Code::NOT_FOUND, format!("task {id} not found")))
    }

    fn publish<E: ctrd_api::Event>(&self, event: &E) {
        if let Err(e) = self.ctx.publisher.publish(event) {
            tracing::warn!(error = %e, "event dropped");
        }
    }
}

/// What the example needs from the bundle's spec.
fn read_spec(bundle: &Path) -> ttrpc::Result<(PathBuf, Vec<String>, Vec<String>, String)> {
    let text = std::fs::read_to_string(bundle.join("config.json"))
        .map_err(|e| status(Code::INVALID_ARGUMENT, format!("reading config.json: {e}")))?;
    let spec: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| status(Code::INVALID_ARGUMENT, format!("config.json: {e}")))?;
    let strings = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let root = spec["root"]["path"].as_str().unwrap_or("rootfs");
    let rootfs = if Path::new(root).is_absolute() {
        PathBuf::from(root)
    } else {
        bundle.join(root)
    };
    if spec["process"]["terminal"].as_bool() == Some(true) {
        return Err(status(
            Code::UNIMPLEMENTED,
            "the chroot example has no terminals",
        ));
    }
    Ok((
        rootfs,
        strings(&spec["process"]["args"]),
        strings(&spec["process"]["env"]),
        spec["process"]["cwd"].as_str().unwrap_or("/").to_owned(),
    ))
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
        let (rootfs, args, env, cwd) = read_spec(&bundle)?;
        let task = Task {
            bundle,
            rootfs,
            args,
            env,
            cwd,
            stdout: req.stdout.clone(),
            stderr: req.stderr.clone(),
            pid: 0,
            exit: watch::channel(None).0,
        };
        self.tasks
            .lock()
            .map_err(|_| status(Code::INTERNAL, "lock"))?
            .insert(req.id.clone(), task);
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
        let task = self.task(&req.id)?;
        let Some((program, rest)) = task.args.split_first() else {
            return Err(status(
                Code::INVALID_ARGUMENT,
                "the spec has no process args",
            ));
        };
        let mut command = Command::new(program);
        command
            .args(rest)
            .env_clear()
            .envs(task.env.iter().filter_map(|kv| kv.split_once('=')))
            .stdin(Stdio::null())
            .stdout(fifo(&task.stdout)?)
            .stderr(fifo(&task.stderr)?);
        let (rootfs, cwd) = (task.rootfs.clone(), task.cwd.clone());
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
        {
            let mut tasks = self
                .tasks
                .lock()
                .map_err(|_| status(Code::INTERNAL, "lock"))?;
            if let Some(t) = tasks.get_mut(&req.id) {
                t.pid = pid;
            }
        }
        self.publish(&TaskStart {
            container_id: req.id.clone(),
            pid,
        });
        let (publisher, id, exit) = (
            self.ctx.publisher.clone(),
            req.id.clone(),
            task.exit.clone(),
        );
        tokio::spawn(async move {
            while let Some(e) = exits.recv().await {
                if e.pid as u32 == pid {
                    let at = ctrd_shim::now();
                    exit.send_replace(Some((e.status, at)));
                    let _ = publisher.publish(&TaskExit {
                        container_id: id.clone(),
                        id: id.clone(),
                        pid,
                        exit_status: e.status,
                        exited_at: Some(at),
                    });
                    break;
                }
            }
        });
        Ok(StartResponse { pid })
    }

    async fn state(&self, _ctx: &TtrpcContext, req: StateRequest) -> ttrpc::Result<StateResponse> {
        let task = self.task(&req.id)?;
        let exit = *task.exit.borrow();
        let status = match (&exit, task.pid) {
            (Some(_), _) => Status::Stopped,
            (None, 0) => Status::Created,
            (None, _) => Status::Running,
        };
        Ok(StateResponse {
            id: req.id,
            bundle: task.bundle.display().to_string(),
            pid: task.pid,
            status: status as i32,
            stdout: task.stdout,
            stderr: task.stderr,
            exit_status: exit.as_ref().map_or(0, |e| e.0),
            exited_at: exit.map(|e| e.1),
            ..Default::default()
        })
    }

    async fn wait(&self, _ctx: &TtrpcContext, req: WaitRequest) -> ttrpc::Result<WaitResponse> {
        let mut rx = self.task(&req.id)?.exit.subscribe();
        let done = rx
            .wait_for(|e| e.is_some())
            .await
            .map_err(|_| status(Code::INTERNAL, "task vanished"))?;
        let done = *done;
        let (exit_status, at) = done.ok_or_else(|| status(Code::INTERNAL, "no exit"))?;
        Ok(WaitResponse {
            exit_status,
            exited_at: Some(at),
        })
    }

    async fn kill(&self, _ctx: &TtrpcContext, req: KillRequest) -> ttrpc::Result<()> {
        let task = self.task(&req.id)?;
        if task.pid != 0 && task.exit.borrow().is_none() {
            let signal = nix::sys::signal::Signal::try_from(req.signal as i32)
                .map_err(|e| status(Code::INVALID_ARGUMENT, e))?;
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(task.pid as i32), signal)
                .map_err(|e| status(Code::INTERNAL, e))?;
        }
        Ok(())
    }

    async fn pids(&self, _ctx: &TtrpcContext, req: PidsRequest) -> ttrpc::Result<PidsResponse> {
        let task = self.task(&req.id)?;
        Ok(PidsResponse {
            processes: vec![ctrd_api::containerd::v1::types::ProcessInfo {
                pid: task.pid,
                info: None,
            }],
        })
    }

    async fn delete(
        &self,
        _ctx: &TtrpcContext,
        req: DeleteRequest,
    ) -> ttrpc::Result<DeleteResponse> {
        let task = self.task(&req.id)?;
        let exit = *task.exit.borrow();
        if task.pid != 0 && exit.is_none() {
            return Err(status(Code::FAILED_PRECONDITION, "the task is running"));
        }
        self.tasks
            .lock()
            .map_err(|_| status(Code::INTERNAL, "lock"))?
            .remove(&req.id);
        let (exit_status, exited_at) = exit.map_or((0, None), |(s, at)| (s, Some(at)));
        self.publish(&TaskDelete {
            container_id: req.id.clone(),
            pid: task.pid,
            exit_status,
            exited_at,
            id: req.id,
        });
        Ok(DeleteResponse {
            pid: task.pid,
            exit_status,
            exited_at,
        })
    }

    async fn connect(
        &self,
        _ctx: &TtrpcContext,
        req: ConnectRequest,
    ) -> ttrpc::Result<ConnectResponse> {
        let task_pid = self.task(&req.id).map(|t| t.pid).unwrap_or(0);
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
