//! The test bed for the runc shim's end-to-end tests: a private containerd whose
//! `io.containerd.runc.v2` is our shim or Debian's Go shim, and `ctr` helpers.

#![allow(dead_code)]

use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ctrd_testbed::{Containerd, Daemon, Rootfs};

/// Which shim containerd runs for `io.containerd.runc.v2`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Shim {
    /// Ours.
    Ours,
    /// Debian's Go shim.
    Go,
}

pub struct Bed {
    /// A namespace of its own: runc's state folder is per namespace and shared by daemons.
    pub ns: String,
    containerd: Option<Containerd>,
    pub daemon: Daemon,
    pub rootfs: Rootfs,
    _bin: Option<tempfile::TempDir>,
    path: Vec<PathBuf>,
}

impl Bed {
    pub fn new(daemon: Daemon, shim: Shim) -> Bed {
        Bed::with_env(daemon, shim, Vec::new())
    }

    /// A bed whose containerd has `env` added to its environment (handed on to the shims).
    pub fn with_env(daemon: Daemon, shim: Shim, env: Vec<(OsString, OsString)>) -> Bed {
        let bin = (shim == Shim::Ours).then(|| {
            let dir = tempfile::Builder::new()
                .prefix("ctrd-ourshim-")
                .tempdir()
                .expect("tempdir");
            std::os::unix::fs::symlink(
                env!("CARGO_BIN_EXE_containerd-shim-runc-v2"),
                dir.path().join("containerd-shim-runc-v2"),
            )
            .expect("link");
            dir
        });
        let path: Vec<PathBuf> = bin.iter().map(|d| d.path().to_owned()).collect();
        let refs: Vec<&Path> = path.iter().map(PathBuf::as_path).collect();
        let containerd =
            Containerd::start_with_env(daemon, &refs, env).unwrap_or_else(|e| panic!("{e}"));
        Bed {
            ns: format!("e2e-{}-{shim:?}", daemon.version())
                .replace('.', "-")
                .to_lowercase(),
            containerd: Some(containerd),
            daemon,
            rootfs: Rootfs::busybox().expect("rootfs"),
            _bin: bin,
            path,
        }
    }

    pub fn containerd(&self) -> &Containerd {
        self.containerd.as_ref().expect("containerd")
    }

    pub fn ctr(&self, args: &[&str]) -> Command {
        let mut c = self.containerd().ctr().expect("ctr");
        c.args(["--namespace", &self.ns]).args(args);
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.ctr(args).output().expect("ctr")
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "ctr {args:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn rootfs(&self) -> String {
        self.rootfs.path().display().to_string()
    }

    pub fn task_status(&self, id: &str) -> String {
        self.ok(&["tasks", "ls"])
            .lines()
            .find(|l| l.split_whitespace().next() == Some(id))
            .and_then(|l| l.split_whitespace().nth(2))
            .unwrap_or("")
            .to_owned()
    }

    pub fn eventually(&self, what: &str, mut check: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while !check() {
            assert!(Instant::now() < deadline, "timed out: {what}");
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// The pid of the task `id`, from `ctr tasks ls`.
    pub fn task_pid(&self, id: &str) -> u32 {
        self.ok(&["tasks", "ls"])
            .lines()
            .find(|l| l.split_whitespace().next() == Some(id))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no pid for task {id}"))
    }

    /// Removes every task and container of the namespace (after a failed test, so the next
    /// one on the same daemon starts clean).
    pub fn sweep(&self) {
        for id in self.ids(&["tasks", "ls", "-q"]) {
            let _ = self.run(&["tasks", "kill", "-s", "SIGKILL", &id]);
            let _ = self.run(&["tasks", "delete", "-f", &id]);
        }
        for id in self.ids(&["containers", "ls", "-q"]) {
            let _ = self.run(&["containers", "rm", &id]);
        }
    }

    fn ids(&self, args: &[&str]) -> Vec<String> {
        String::from_utf8_lossy(&self.run(args).stdout)
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    }

    pub fn remove(&self, id: &str) {
        let _ = self.run(&["tasks", "kill", "-s", "SIGKILL", id]);
        self.eventually(&format!("{id} stops"), || {
            let s = self.task_status(id);
            s == "STOPPED" || s.is_empty()
        });
        let _ = self.run(&["tasks", "delete", id]);
        self.ok(&["containers", "rm", id]);
    }

    /// Runs ctr under a 25x100 pseudo-terminal (`script`) and returns what it printed, with
    /// the terminal's carriage returns removed.
    pub fn in_terminal(&self, args: &[&str]) -> String {
        // The test bed's ctr command, for its program and environment.
        let ctr = self.containerd().ctr().expect("ctr");
        let line = format!(
            "stty rows 25 cols 100; {} --address {} --namespace {} {}",
            Path::new(ctr.get_program()).display(),
            self.containerd().grpc_address().display(),
            self.ns,
            args.iter()
                .map(|a| format!("'{a}'"))
                .collect::<Vec<_>>()
                .join(" ")
        );
        let out = Command::new("script")
            .args(["-qec", &line, "/dev/null"])
            .envs(ctr.get_envs().filter_map(|(k, v)| Some((k, v?))))
            .stdin(Stdio::null())
            .output()
            .expect("script (util-linux)");
        // ctr writes a NUL (shown by the terminal as ^@) when it sets the terminal up.
        let text = String::from_utf8_lossy(&out.stdout)
            .replace(['\r', '\0'], "")
            .replace("^@", "");
        assert!(out.status.success(), "{line}: {text}");
        text
    }

    /// Sets the task's memory limit through the Tasks service.
    pub fn update_memory(&self, id: &str, limit: i64) {
        use ctrd_api::containerd::services::tasks::v1::UpdateTaskRequest;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let client = ctrd_client::Client::connect(self.containerd().grpc_address())
                .await
                .expect("connect")
                .with_namespace(&self.ns);
            let resources = serde_json::json!({ "memory": { "limit": limit } });
            client
                .tasks()
                .update(UpdateTaskRequest {
                    container_id: id.into(),
                    resources: Some(ctrd_api::prost_types::Any {
                        type_url:
                            "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources"
                                .into(),
                        value: resources.to_string().into_bytes(),
                    }),
                    ..Default::default()
                })
                .await
                .expect("update");
        });
    }

    /// Runs `/nonexistent` as exec `exec_id` of the running task `id` the way containerd's
    /// CRI runs an ExecSync and tidies up after it: Wait before Start, then (Start having
    /// failed) Kill with SIGKILL and, as containerd's client does when the kill says "not
    /// found", wait for the Wait to return, then delete the exec.
    pub fn exec_missing_binary(&self, id: &str, exec_id: &str) -> FailedExec {
        use ctrd_api::containerd::services::tasks::v1::{
            DeleteProcessRequest, ExecProcessRequest, KillRequest, StartRequest, WaitRequest,
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let client = ctrd_client::Client::connect(self.containerd().grpc_address())
                .await
                .expect("connect")
                .with_namespace(&self.ns);
            let process = serde_json::json!({
                "args": ["/nonexistent"],
                "cwd": "/",
                "env": ["PATH=/bin"],
                "user": { "uid": 0, "gid": 0 },
            });
            client
                .tasks()
                .exec(ExecProcessRequest {
                    container_id: id.into(),
                    exec_id: exec_id.into(),
                    spec: Some(ctrd_api::prost_types::Any {
                        type_url: "types.containerd.io/opencontainers/runtime-spec/1/Process"
                            .into(),
                        value: process.to_string().into_bytes(),
                    }),
                    ..Default::default()
                })
                .await
                .expect("exec");
            let mut waiter = client.tasks();
            let request = WaitRequest {
                container_id: id.into(),
                exec_id: exec_id.into(),
            };
            let wait = tokio::spawn(async move { waiter.wait(request).await });
            let started = client
                .tasks()
                .start(StartRequest {
                    container_id: id.into(),
                    exec_id: exec_id.into(),
                })
                .await;
            let start_error = match started {
                Ok(_) => String::new(),
                Err(status) => status.message().to_owned(),
            };
            let killed = client
                .tasks()
                .kill(KillRequest {
                    container_id: id.into(),
                    exec_id: exec_id.into(),
                    signal: 9,
                    all: true,
                })
                .await;
            let waited = tokio::time::timeout(Duration::from_secs(5), wait)
                .await
                .ok()
                .map(|joined| joined.expect("the wait task"));
            let deleted = client
                .tasks()
                .delete_process(DeleteProcessRequest {
                    container_id: id.into(),
                    exec_id: exec_id.into(),
                })
                .await;
            FailedExec {
                start_error,
                kill: killed.err().map(|s| s.code()),
                wait: waited.map(|w| w.map(|r| r.into_inner().exit_status).map_err(|s| s.code())),
                deleted: deleted.map(drop).map_err(|s| s.code()),
            }
        })
    }

    /// The task's metrics through the Tasks service (`Metrics` with an id filter): the
    /// shim's `Stats` answer as containerd passes it on.
    pub fn metrics(&self, id: &str) -> ctrd_api::prost_types::Any {
        use ctrd_api::containerd::services::tasks::v1::MetricsRequest;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let client = ctrd_client::Client::connect(self.containerd().grpc_address())
                .await
                .expect("connect")
                .with_namespace(&self.ns);
            let response = client
                .tasks()
                .metrics(MetricsRequest {
                    filters: vec![format!("id=={id}")],
                })
                .await
                .expect("metrics")
                .into_inner();
            response
                .metrics
                .into_iter()
                .find(|m| m.id == id)
                .and_then(|m| m.data)
                .unwrap_or_else(|| panic!("no metrics for task {id}"))
        })
    }

    /// Kills containerd with SIGKILL and starts the same one again on the same folders.
    pub fn crash_containerd(&mut self) {
        let old = self.containerd.take().expect("containerd");
        let refs: Vec<&Path> = self.path.iter().map(PathBuf::as_path).collect();
        self.containerd = Some(
            old.crash_and_restart(&refs)
                .unwrap_or_else(|e| panic!("{e}")),
        );
    }

    /// Stops containerd and starts the same one again on the same folders.
    pub fn restart_containerd(&mut self) {
        let old = self.containerd.take().expect("containerd");
        let refs: Vec<&Path> = self.path.iter().map(PathBuf::as_path).collect();
        self.containerd = Some(old.restart(&refs).unwrap_or_else(|e| panic!("{e}")));
    }
}

/// What the shim answered for an exec that could not start (see [`Bed::exec_missing_binary`]).
#[derive(Debug)]
pub struct FailedExec {
    /// Start's error message (empty if it started).
    pub start_error: String,
    /// Kill's error code, if it failed.
    pub kill: Option<ctrd_api::tonic::Code>,
    /// Wait's answer (exit status or error code); `None` if it did not return within 5 s.
    pub wait: Option<Result<u32, ctrd_api::tonic::Code>>,
    /// Delete's answer.
    pub deleted: Result<(), ctrd_api::tonic::Code>,
}

/// Pids of shim processes serving this daemon.
pub fn shim_pids(containerd: &Containerd) -> Vec<i32> {
    let address = containerd.grpc_address().display().to_string();
    std::fs::read_dir("/proc")
        .expect("proc")
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let pid: i32 = e.file_name().to_str()?.parse().ok()?;
            let cmd = String::from_utf8_lossy(&std::fs::read(e.path().join("cmdline")).ok()?)
                .replace('\0', " ");
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            let zombie = stat.rsplit_once(')')?.1.trim_start().starts_with('Z');
            (cmd.contains("containerd-shim-runc-v2") && cmd.contains(&address) && !zombie)
                .then_some(pid)
        })
        .collect()
}

/// `ctr events` running in the background, its lines read as they come.
pub struct Events {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Events {
    /// Starts `ctr events` and waits until it is subscribed (it has seen a probe container's
    /// create event).
    pub fn subscribe(bed: &Bed) -> Events {
        let mut child = bed
            .ctr(&["events"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("ctr events");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut events = Events {
            child,
            lines,
            seen: Vec::new(),
        };
        let probe = format!("events-probe-{}", std::process::id());
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let rootfs = bed.rootfs();
            bed.ok(&[
                "containers",
                "create",
                "--rootfs",
                &rootfs,
                &probe,
                "/bin/true",
            ]);
            bed.ok(&["containers", "rm", &probe]);
            if events.next_until(Instant::now() + Duration::from_millis(200), |l| {
                l.contains("/containers/create") && l.contains(&probe)
            }) {
                return events;
            }
            assert!(Instant::now() < deadline, "ctr events saw no event");
        }
    }

    /// Waits (up to 15 s) for a line matching `what`; panics naming `description` otherwise.
    pub fn wait_for(&mut self, description: &str, what: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(15);
        assert!(
            self.next_until(deadline, what),
            "no event: {description}; seen:\n{}",
            self.seen.join("\n")
        );
    }

    /// Every line seen so far.
    pub fn seen(&self) -> &[String] {
        &self.seen
    }

    fn next_until(&mut self, deadline: Instant, what: impl Fn(&str) -> bool) -> bool {
        if self.seen.iter().any(|l| what(l)) {
            return true;
        }
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let hit = what(&line);
                    self.seen.push(line);
                    if hit {
                        return true;
                    }
                }
                Err(_) => return false,
            }
        }
        false
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits up to `limit` for `child` and returns its output; `None` (after killing it) if it
/// was still running then.
pub fn output_within(mut child: Child, limit: Duration) -> Option<Output> {
    use std::io::Read;
    let deadline = Instant::now() + limit;
    // Read both pipes on threads so a chatty child cannot fill a pipe and stall.
    let out = child.stdout.take().map(|mut s| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = s.read_to_end(&mut bytes);
            bytes
        })
    });
    let err = child.stderr.take().map(|mut s| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = s.read_to_end(&mut bytes);
            bytes
        })
    });
    let status = loop {
        if let Ok(Some(status)) = child.try_wait() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let collect = |h: Option<std::thread::JoinHandle<Vec<u8>>>| {
        h.and_then(|h| h.join().ok()).unwrap_or_default()
    };
    let (stdout, stderr) = (collect(out), collect(err));
    status.map(|status| Output {
        status,
        stdout,
        stderr,
    })
}
