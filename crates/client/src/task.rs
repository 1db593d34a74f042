//! Tasks (a container's running process) and exec'd processes.

use std::time::SystemTime;

use ctrd_api::containerd::services::snapshots::v1 as snapshots;
use ctrd_api::containerd::services::tasks::v1 as tasks;
use ctrd_api::prost_types::Any;

use crate::spec::PROCESS_TYPE_URL;
use crate::stdio::{self, FifoDir, Io, Stdio};
use crate::{Client, Error};

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitStatus {
    /// Its exit status (128 + signal for a process killed by a signal).
    pub code: u32,
    /// When it exited.
    pub exited_at: Option<SystemTime>,
}

impl ExitStatus {
    fn new(code: u32, at: Option<ctrd_api::prost_types::Timestamp>) -> ExitStatus {
        ExitStatus {
            code,
            exited_at: at.and_then(|t| SystemTime::try_from(t).ok()),
        }
    }
}

/// A container's task: its init process.
#[derive(Debug)]
pub struct Task {
    client: Client,
    id: String,
    pid: u32,
    fifos: Option<FifoDir>,
}

/// A process exec'd in a task.
#[derive(Debug)]
pub struct Process {
    client: Client,
    container_id: String,
    exec_id: String,
    fifos: Option<FifoDir>,
}

impl Client {
    /// Creates the task of container `id` with `stdio` (not yet started). The returned
    /// [`Io`] holds the client's ends of any FIFOs.
    pub async fn new_task(&self, id: &str, stdio: Stdio) -> Result<(Task, Io), Error> {
        let container = self.get_container(id).await?;
        let mut rootfs = Vec::new();
        if !container.snapshot_key.is_empty() {
            let request = snapshots::MountsRequest {
                snapshotter: container.snapshotter.clone(),
                key: container.snapshot_key.clone(),
            };
            rootfs = self
                .unary(
                    "snapshots.Mounts",
                    format!(
                        "snapshot {} in {}",
                        container.snapshot_key, container.snapshotter
                    ),
                    async { self.snapshots().mounts(request).await },
                )
                .await?
                .mounts;
        }
        let prepared = stdio::prepare(self.namespace(), id, &stdio)?;
        let request = tasks::CreateTaskRequest {
            container_id: id.to_owned(),
            rootfs,
            stdin: prepared.stdin,
            stdout: prepared.stdout,
            stderr: prepared.stderr,
            terminal: prepared.terminal,
            ..Default::default()
        };
        let created = self
            .unary("tasks.Create", format!("task {id}"), async {
                self.tasks().create(request).await
            })
            .await?;
        Ok((
            Task {
                client: self.clone(),
                id: id.to_owned(),
                pid: created.pid,
                fifos: prepared.fifos,
            },
            prepared.io,
        ))
    }

    /// The existing task of container `id` (without stdio; use [`Client::new_task`]'s [`Io`]
    /// to read a task's output).
    pub async fn load_task(&self, id: &str) -> Result<Task, Error> {
        let request = tasks::GetRequest {
            container_id: id.to_owned(),
            exec_id: String::new(),
        };
        let got = self
            .unary("tasks.Get", format!("task {id}"), async {
                self.tasks().get(request).await
            })
            .await?;
        Ok(Task {
            client: self.clone(),
            id: id.to_owned(),
            pid: got.process.map(|p| p.pid).unwrap_or_default(),
            fifos: None,
        })
    }

    /// Every task in the namespace: container id, pid and status name.
    pub async fn list_tasks(&self) -> Result<Vec<(String, u32, String)>, Error> {
        let request = tasks::ListTasksRequest {
            filter: String::new(),
        };
        let listed = self
            .unary(
                "tasks.List",
                format!("namespace {}", self.namespace()),
                async { self.tasks().list(request).await },
            )
            .await?;
        Ok(listed
            .tasks
            .into_iter()
            .map(|p| {
                let status = ctrd_api::containerd::v1::types::Status::try_from(p.status)
                    .map(|s| format!("{s:?}").to_uppercase())
                    .unwrap_or_else(|_| "UNKNOWN".into());
                (p.id, p.pid, status)
            })
            .collect())
    }

    async fn wait_for(&self, id: &str, exec_id: &str) -> Result<ExitStatus, Error> {
        let request = tasks::WaitRequest {
            container_id: id.to_owned(),
            exec_id: exec_id.to_owned(),
        };
        // No per-call timeout: a wait lasts as long as the process.
        let waited = self
            .clone()
            .with_call_timeout(None)
            .unary("tasks.Wait", process_name(id, exec_id), async {
                self.tasks().wait(request).await
            })
            .await?;
        Ok(ExitStatus::new(waited.exit_status, waited.exited_at))
    }

    async fn kill_process(
        &self,
        id: &str,
        exec_id: &str,
        signal: u32,
        all: bool,
    ) -> Result<(), Error> {
        let request = tasks::KillRequest {
            container_id: id.to_owned(),
            exec_id: exec_id.to_owned(),
            signal,
            all,
        };
        self.unary("tasks.Kill", process_name(id, exec_id), async {
            self.tasks().kill(request).await
        })
        .await
        .map(|_| ())
    }

    async fn resize_process(
        &self,
        id: &str,
        exec_id: &str,
        width: u32,
        height: u32,
    ) -> Result<(), Error> {
        let request = tasks::ResizePtyRequest {
            container_id: id.to_owned(),
            exec_id: exec_id.to_owned(),
            width,
            height,
        };
        self.unary("tasks.ResizePty", process_name(id, exec_id), async {
            self.tasks().resize_pty(request).await
        })
        .await
        .map(|_| ())
    }

    async fn close_stdin_of(&self, id: &str, exec_id: &str) -> Result<(), Error> {
        let request = tasks::CloseIoRequest {
            container_id: id.to_owned(),
            exec_id: exec_id.to_owned(),
            stdin: true,
        };
        self.unary("tasks.CloseIO", process_name(id, exec_id), async {
            self.tasks().close_io(request).await
        })
        .await
        .map(|_| ())
    }

    async fn start_process(&self, id: &str, exec_id: &str) -> Result<u32, Error> {
        let request = tasks::StartRequest {
            container_id: id.to_owned(),
            exec_id: exec_id.to_owned(),
        };
        self.unary("tasks.Start", process_name(id, exec_id), async {
            self.tasks().start(request).await
        })
        .await
        .map(|r| r.pid)
    }
}

fn process_name(id: &str, exec_id: &str) -> String {
    if exec_id.is_empty() {
        format!("task {id}")
    } else {
        format!("exec {exec_id} in task {id}")
    }
}

impl Task {
    /// The container's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The init process's pid on the host.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Starts the task.
    pub async fn start(&self) -> Result<u32, Error> {
        self.client.start_process(&self.id, "").await
    }

    /// Waits for the task to exit.
    pub async fn wait(&self) -> Result<ExitStatus, Error> {
        self.client.wait_for(&self.id, "").await
    }

    /// Sends `signal` to the init process (`all`: to every process in the container).
    pub async fn kill(&self, signal: i32, all: bool) -> Result<(), Error> {
        self.client
            .kill_process(&self.id, "", u32::try_from(signal).unwrap_or(9), all)
            .await
    }

    /// Pauses (freezes) the task.
    pub async fn pause(&self) -> Result<(), Error> {
        let request = tasks::PauseTaskRequest {
            container_id: self.id.clone(),
        };
        self.client
            .unary("tasks.Pause", format!("task {}", self.id), async {
                self.client.tasks().pause(request).await
            })
            .await
            .map(|_| ())
    }

    /// Resumes a paused task.
    pub async fn resume(&self) -> Result<(), Error> {
        let request = tasks::ResumeTaskRequest {
            container_id: self.id.clone(),
        };
        self.client
            .unary("tasks.Resume", format!("task {}", self.id), async {
                self.client.tasks().resume(request).await
            })
            .await
            .map(|_| ())
    }

    /// Resizes the task's terminal.
    pub async fn resize(&self, width: u32, height: u32) -> Result<(), Error> {
        self.client
            .resize_process(&self.id, "", width, height)
            .await
    }

    /// Closes the task's stdin (after the client's end was dropped).
    pub async fn close_stdin(&self) -> Result<(), Error> {
        self.client.close_stdin_of(&self.id, "").await
    }

    /// The task's metrics, as the shim sent them: cgroup v1 or v2 metrics in an `Any`
    /// (decode with `ctrd_api::io::containerd::cgroups::v1::Metrics::from_any` or `v2`).
    pub async fn metrics(&self) -> Result<Option<Any>, Error> {
        let request = tasks::MetricsRequest {
            filters: vec![format!("id=={}", self.id)],
        };
        let got = self
            .client
            .unary("tasks.Metrics", format!("task {}", self.id), async {
                self.client.tasks().metrics(request).await
            })
            .await?;
        Ok(got.metrics.into_iter().find_map(|m| m.data))
    }

    /// Deletes the (exited) task; returns how it ended. Removes its FIFOs.
    pub async fn delete(mut self) -> Result<ExitStatus, Error> {
        let request = tasks::DeleteTaskRequest {
            container_id: self.id.clone(),
        };
        let deleted = self
            .client
            .unary("tasks.Delete", format!("task {}", self.id), async {
                self.client.tasks().delete(request).await
            })
            .await?;
        self.fifos.take();
        Ok(ExitStatus::new(deleted.exit_status, deleted.exited_at))
    }

    /// Runs `args` in the task as exec `exec_id`, with `stdio` (created, not yet started).
    /// The process inherits the container's environment, user and working directory.
    pub async fn exec(
        &self,
        exec_id: &str,
        args: &[String],
        stdio: Stdio,
    ) -> Result<(Process, Io), Error> {
        let container = self.client.get_container(&self.id).await?;
        let bad = |reason: String| Error::Spec {
            id: self.id.clone(),
            reason,
        };
        let spec: oci_spec::runtime::Spec = serde_json::from_slice(
            container
                .spec
                .as_deref()
                .ok_or_else(|| bad("the container has no spec".into()))?,
        )
        .map_err(|e| bad(format!("stored spec is unreadable: {e}")))?;
        let mut process = spec
            .process()
            .clone()
            .ok_or_else(|| bad("the container's spec has no process".into()))?;
        process.set_args(Some(args.to_vec()));
        process.set_terminal(Some(stdio.is_terminal()));
        let process_json = serde_json::to_vec(&process).map_err(|e| bad(e.to_string()))?;

        let name = format!("{}-{exec_id}", self.id);
        let prepared = stdio::prepare(self.client.namespace(), &name, &stdio)?;
        let request = tasks::ExecProcessRequest {
            container_id: self.id.clone(),
            stdin: prepared.stdin,
            stdout: prepared.stdout,
            stderr: prepared.stderr,
            terminal: prepared.terminal,
            spec: Some(Any {
                type_url: PROCESS_TYPE_URL.to_owned(),
                value: process_json,
            }),
            exec_id: exec_id.to_owned(),
        };
        self.client
            .unary("tasks.Exec", process_name(&self.id, exec_id), async {
                self.client.tasks().exec(request).await
            })
            .await?;
        Ok((
            Process {
                client: self.client.clone(),
                container_id: self.id.clone(),
                exec_id: exec_id.to_owned(),
                fifos: prepared.fifos,
            },
            prepared.io,
        ))
    }
}

impl Process {
    /// The exec id.
    pub fn id(&self) -> &str {
        &self.exec_id
    }

    /// Starts the process; returns its pid.
    pub async fn start(&self) -> Result<u32, Error> {
        self.client
            .start_process(&self.container_id, &self.exec_id)
            .await
    }

    /// Waits for the process to exit.
    pub async fn wait(&self) -> Result<ExitStatus, Error> {
        self.client
            .wait_for(&self.container_id, &self.exec_id)
            .await
    }

    /// Sends `signal` to the process.
    pub async fn kill(&self, signal: i32) -> Result<(), Error> {
        self.client
            .kill_process(
                &self.container_id,
                &self.exec_id,
                u32::try_from(signal).unwrap_or(9),
                false,
            )
            .await
    }

    /// Resizes the process's terminal.
    pub async fn resize(&self, width: u32, height: u32) -> Result<(), Error> {
        self.client
            .resize_process(&self.container_id, &self.exec_id, width, height)
            .await
    }

    /// Closes the process's stdin.
    pub async fn close_stdin(&self) -> Result<(), Error> {
        self.client
            .close_stdin_of(&self.container_id, &self.exec_id)
            .await
    }

    /// Deletes the (exited) process; returns how it ended. Removes its FIFOs.
    pub async fn delete(mut self) -> Result<ExitStatus, Error> {
        let request = tasks::DeleteProcessRequest {
            container_id: self.container_id.clone(),
            exec_id: self.exec_id.clone(),
        };
        let deleted = self
            .client
            .unary(
                "tasks.DeleteProcess",
                process_name(&self.container_id, &self.exec_id),
                async { self.client.tasks().delete_process(request).await },
            )
            .await?;
        self.fifos.take();
        Ok(ExitStatus::new(deleted.exit_status, deleted.exited_at))
    }
}
