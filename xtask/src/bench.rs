//! `cargo xtask bench`: our runc shim against Debian's Go shim, with plain `runc run` as the
//! floor, measured side by side in one interleaved run on private containerd daemons.
//!
//! Figures: start latency (`ctr run --rm … /bin/true`), exec latency (`ctr task exec …
//! /bin/true`), idle PSS/RSS/threads per shim with 10 and 50 containers, stdout throughput
//! (1 GiB into a FIFO the benchmark reads), 50 concurrent starts, and binary size. Results print
//! as a table with ratios to the Go shim and are written as JSON.
//!
//! Each latency is also split, in the same run, into what no runc shim can avoid: `ctr` and
//! containerd's own work (the same call through our chroot example shim, which runs no runc)
//! and runc's (the runc commands a shim must run, timed directly on containerd's own spec). What
//! is left is the shim's own share.

use std::ffi::OsStr;
use std::io::{Read, Seek};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ctrd_testbed::{Bundle, Containerd, Daemon, Rootfs};
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
use serde_json::json;

use crate::{Error, repo_root};

/// Options of `cargo xtask bench`.
#[derive(Debug, Clone)]
pub struct Options {
    /// Samples for the latency figures.
    pub runs: usize,
    /// Which containerd to run.
    pub daemon: Daemon,
    /// Skip the 1 GiB throughput figure.
    pub quick: bool,
}

/// Set by SIGINT or SIGTERM: the run stops before its next command, and its daemons, shims and
/// containers are cleaned up as they drop (an unhandled signal would leave them running).
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_interrupt(_: nix::libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Routes SIGINT and SIGTERM to [`INTERRUPTED`].
fn catch_interrupts() -> Result<(), Error> {
    let action = SigAction::new(
        SigHandler::Handler(on_interrupt),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for signal in [Signal::SIGINT, Signal::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe; children
        // get the default action back when they exec.
        unsafe { sigaction(signal, &action) }
            .map_err(|e| Error::Message(format!("installing a {signal} handler: {e}")))?;
    }
    Ok(())
}

/// Fails once the run was interrupted.
fn go_on() -> Result<(), Error> {
    if INTERRUPTED.load(Ordering::SeqCst) {
        Err(Error::Message("bench: interrupted; cleaning up".into()))
    } else {
        Ok(())
    }
}

/// Rounds of the 50-concurrent-starts figure.
const CONCURRENT_ROUNDS: usize = 3;

/// The runtime our runc shim and Debian's Go shim answer to.
const RUNC_RUNTIME: &str = "io.containerd.runc.v2";
/// The runtime of our chroot example shim: the floor, a shim that runs no runc.
const FLOOR_RUNTIME: &str = "io.containerd.chroot.v2";

/// One shim under test, in its own namespace of a private daemon.
struct Subject<'a> {
    name: &'static str,
    containerd: &'a Containerd,
    ns: String,
}

impl Subject<'_> {
    fn ctr<S: AsRef<OsStr>>(&self, args: &[S]) -> Command {
        let mut c = self
            .containerd
            .ctr()
            .expect("the daemon's ctr exists once started");
        c.args(["--namespace", &self.ns]).args(args);
        c.stdin(Stdio::null());
        c
    }

    fn ok<S: AsRef<OsStr>>(&self, args: &[S]) -> Result<(), Error> {
        go_on()?;
        let out = self
            .ctr(args)
            .output()
            .map_err(|e| Error::Message(format!("ctr: {e}")))?;
        if out.status.success() {
            Ok(())
        } else {
            let args: Vec<_> = args.iter().map(|a| a.as_ref().to_string_lossy()).collect();
            Err(Error::Message(format!(
                "{}: ctr {args:?} failed: {}",
                self.name,
                String::from_utf8_lossy(&out.stderr)
            )))
        }
    }

    fn timed<S: AsRef<OsStr>>(&self, args: &[S]) -> Result<Duration, Error> {
        let start = Instant::now();
        self.ok(args)?;
        Ok(start.elapsed())
    }

    fn shim_pids(&self) -> Vec<u32> {
        let address = self.containerd.grpc_address().display().to_string();
        processes()
            .into_iter()
            .filter(|(_, cmd)| cmd.contains("containerd-shim-runc-v2") && cmd.contains(&address))
            .map(|(pid, _)| pid)
            .collect()
    }

    fn remove_all(&self, ids: &[String]) {
        for id in ids {
            let _ = self.ctr(&["tasks", "kill", "-s", "SIGKILL", id]).output();
        }
        for id in ids {
            for _ in 0..100 {
                let done = self
                    .ctr(&["tasks", "delete", id])
                    .output()
                    .map(|o| o.status.success())
                    .unwrap_or(false);
                if done {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = self.ctr(&["containers", "rm", id]).output();
        }
    }
}

/// One 1 GiB run: MiB/s from the task's start to the FIFO's end.
async fn stdout_mib_s(s: &Subject<'_>, rootfs: &str, id: &str) -> Result<f64, Error> {
    use ctrd_api::containerd::services::containers::v1 as containers;
    use ctrd_api::containerd::services::tasks::v1 as tasks;
    use tokio::io::AsyncReadExt;

    let fail =
        |what: &str, e: &dyn std::fmt::Display| Error::Message(format!("{}: {what}: {e}", s.name));
    let client = ctrd_client::Client::connect(s.containerd.grpc_address())
        .await
        .map_err(|e| fail("connect", &e))?
        .with_namespace(&s.ns);
    let bundle = Bundle::busybox(&["/bin/dd", "if=/dev/zero", "bs=1048576", "count=1024"])
        .map_err(|e| fail("bundle", &e))?;
    bundle
        .edit_spec(|spec| spec["root"]["path"] = rootfs.into())
        .map_err(|e| fail("spec", &e))?;
    let spec =
        std::fs::read(bundle.config_path()).map_err(|e| Error::io(&bundle.config_path(), e))?;
    let fifo_dir = tempfile::tempdir().map_err(|e| Error::io(Path::new("tempdir"), e))?;
    let fifo = fifo_dir.path().join("stdout");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600))
        .map_err(|e| Error::io(&fifo, e.into()))?;
    let mut reader = tokio::net::unix::pipe::OpenOptions::new()
        .read_write(true)
        .open_receiver(&fifo)
        .map_err(|e| Error::io(&fifo, e))?;
    client
        .containers()
        .create(containers::CreateContainerRequest {
            container: Some(containers::Container {
                id: id.into(),
                runtime: Some(containers::container::Runtime {
                    name: "io.containerd.runc.v2".into(),
                    options: None,
                }),
                spec: Some(ctrd_api::prost_types::Any {
                    type_url: "types.containerd.io/opencontainers/runtime-spec/1/Spec".into(),
                    value: spec,
                }),
                ..Default::default()
            }),
        })
        .await
        .map_err(|e| fail("create container", &e))?;
    client
        .tasks()
        .create(tasks::CreateTaskRequest {
            container_id: id.into(),
            // The Go shim opens every stream it is given a path for; stderr shares the FIFO.
            stdout: fifo.display().to_string(),
            stderr: fifo.display().to_string(),
            ..Default::default()
        })
        .await
        .map_err(|e| fail("create task", &e))?;
    let started = Instant::now();
    client
        .tasks()
        .start(tasks::StartRequest {
            container_id: id.into(),
            exec_id: String::new(),
        })
        .await
        .map_err(|e| fail("start", &e))?;
    // The FIFO is opened read-write (so the read end never sees EOF early): read exactly 1 GiB.
    let mut buf = vec![0u8; 1 << 20];
    let mut total: u64 = 0;
    while total < 1 << 30 {
        let n = reader
            .read(&mut buf)
            .await
            .map_err(|e| Error::io(&fifo, e))?;
        if n == 0 {
            break;
        }
        total += n as u64;
    }
    let elapsed = started.elapsed();
    let _ = client
        .tasks()
        .wait(tasks::WaitRequest {
            container_id: id.into(),
            exec_id: String::new(),
        })
        .await;
    let _ = client
        .tasks()
        .delete(tasks::DeleteTaskRequest {
            container_id: id.into(),
        })
        .await;
    let _ = client
        .containers()
        .delete(containers::DeleteContainerRequest { id: id.into() })
        .await;
    Ok(total as f64 / (1024.0 * 1024.0) / elapsed.as_secs_f64())
}

/// A bundle holding containerd's own spec for `id` (from its task folder on `s`'s daemon),
/// made to run `/bin/true` on `rootfs`: what runc is given for a `ctr run`.
fn containerd_spec_bundle(s: &Subject<'_>, id: &str, rootfs: &str) -> Result<Bundle, Error> {
    let path = s
        .containerd
        .dir()
        .join("state/io.containerd.runtime.v2.task")
        .join(&s.ns)
        .join(id)
        .join("config.json");
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    let mut spec: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Error::Message(format!("{}: {e}", path.display())))?;
    spec["root"] = json!({ "path": rootfs });
    spec["process"]["args"] = json!(["/bin/true"]);
    let bundle = Bundle::busybox(&["/bin/true"]).map_err(|e| Error::Message(e.to_string()))?;
    bundle
        .edit_spec(|s| *s = spec)
        .map_err(|e| Error::Message(e.to_string()))?;
    Ok(bundle)
}

/// The parent cgroup of the containers [`runc_steps`] makes (runc removes only their own).
const RUNC_STEPS_PARENT: &str = "bench-runc";

/// Removes [`RUNC_STEPS_PARENT`] from every hierarchy when dropped.
struct RuncStepsCgroups;

impl Drop for RuncStepsCgroups {
    fn drop(&mut self) {
        ctrd_testbed::cleanup::remove_namespace_leftovers(RUNC_STEPS_PARENT);
    }
}

/// `ctr run` arguments for container `id` of `runtime` on `rootfs`: detached and running
/// `sleep`, or running `/bin/true` and removed after it.
fn ctr_run(runtime: &str, rootfs: &str, id: &str, detached: bool) -> Vec<String> {
    let (mode, command): (&str, &[&str]) = if detached {
        ("-d", &["/bin/sleep", "3600"])
    } else {
        ("--rm", &["/bin/true"])
    };
    let runtime = format!("--runtime={runtime}");
    ["run", mode, runtime.as_str(), "--rootfs", rootfs, id]
        .iter()
        .chain(command)
        .map(|a| (*a).to_owned())
        .collect()
}

/// Runs `runc --root ROOT ARGS...`, failing with runc's message if it fails.
///
/// Its output goes to a file, not a pipe: a created container keeps runc's stdio open, so
/// reading a pipe to its end would wait for the container.
fn runc(root: &Path, args: &[&OsStr]) -> Result<(), Error> {
    go_on()?;
    let mut log = tempfile::tempfile().map_err(|e| Error::io(Path::new("tempfile"), e))?;
    let output = log
        .try_clone()
        .map_err(|e| Error::io(Path::new("tempfile"), e))?;
    let status = Command::new("runc")
        .arg("--root")
        .arg(root)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(output)
        .status()
        .map_err(|e| Error::Message(format!("runc: {e}")))?;
    if status.success() {
        return Ok(());
    }
    let mut message = String::new();
    let _ = log
        .seek(std::io::SeekFrom::Start(0))
        .and_then(|_| log.read_to_string(&mut message));
    Err(Error::Message(format!(
        "runc {args:?} failed ({status}): {}",
        message.trim()
    )))
}

/// The runc commands a shim runs for one `ctr run --rm … /bin/true`, timed directly: `runc
/// create`, `runc start`, the wait for the process to end, `runc delete`.
fn runc_steps(root: &Path, bundle: &Bundle, id: &str) -> Result<Duration, Error> {
    bundle
        .edit_spec(|spec| {
            spec["linux"]["cgroupsPath"] = format!("/{RUNC_STEPS_PARENT}/{id}").into()
        })
        .map_err(|e| Error::Message(e.to_string()))?;
    let pid_file = bundle.path().join("init.pid");
    let steps = || -> Result<Duration, Error> {
        let t = Instant::now();
        runc(
            root,
            &[
                "create".as_ref(),
                "--bundle".as_ref(),
                bundle.path().as_os_str(),
                "--pid-file".as_ref(),
                pid_file.as_os_str(),
                id.as_ref(),
            ],
        )?;
        let pid = std::fs::read_to_string(&pid_file)
            .map_err(|e| Error::io(&pid_file, e))?
            .trim()
            .parse::<i32>()
            .ok()
            .and_then(rustix::process::Pid::from_raw)
            .ok_or_else(|| Error::Message(format!("{}: no pid", pid_file.display())))?;
        // Not our child (runc's), so a pidfd tells when it is gone.
        let pidfd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())
            .map_err(|e| Error::io(&pid_file, e.into()))?;
        runc(root, &["start".as_ref(), id.as_ref()])?;
        let mut fds = [rustix::event::PollFd::new(
            &pidfd,
            rustix::event::PollFlags::IN,
        )];
        let limit = rustix::event::Timespec {
            tv_sec: 10,
            tv_nsec: 0,
        };
        rustix::event::poll(&mut fds, Some(&limit)).map_err(|e| Error::io(&pid_file, e.into()))?;
        runc(root, &["delete".as_ref(), id.as_ref()])?;
        Ok(t.elapsed())
    };
    let result = steps();
    if result.is_err() {
        let _ = runc(root, &["delete".as_ref(), "--force".as_ref(), id.as_ref()]);
    }
    result
}

fn processes() -> Vec<(u32, String)> {
    std::fs::read_dir("/proc")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter_map(|e| {
                    let pid = e.file_name().to_str()?.parse().ok()?;
                    let cmd = std::fs::read(e.path().join("cmdline")).ok()?;
                    Some((pid, String::from_utf8_lossy(&cmd).replace('\0', " ")))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// PSS and RSS (KiB) and threads of a process.
fn footprint(pid: u32) -> (u64, u64, u64) {
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    let field = |name: &str| {
        rollup
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let threads = std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| d.count() as u64)
        .unwrap_or(0);
    (field("Pss:"), field("Rss:"), threads)
}

/// Which subject goes first in iteration `i`: alternating, so neither always runs right after
/// the other's clean-up.
fn order(i: usize) -> [usize; 2] {
    if i.is_multiple_of(2) { [0, 1] } else { [1, 0] }
}

fn median(mut samples: Vec<f64>) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    samples.sort_by(|a, b| a.total_cmp(b));
    samples[samples.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Runs the benchmark and prints and writes its results.
pub fn run(opts: &Options) -> Result<(), Error> {
    catch_interrupts()?;
    crate::suite::setup_testbed()?;
    let shim = crate::suite::build_release_shim()?;
    let floor_shim = crate::suite::build_release_example("ctrd-shim", "chroot_shim")?;
    let shim_dir = tempfile::Builder::new()
        .prefix("ctrd-bench-")
        .tempdir()
        .map_err(|e| Error::io(Path::new("tempdir"), e))?;
    for (binary, name) in [
        (&shim, "containerd-shim-runc-v2"),
        (&floor_shim, "containerd-shim-chroot-v2"),
    ] {
        std::os::unix::fs::symlink(binary, shim_dir.path().join(name))
            .map_err(|e| Error::io(binary, e))?;
    }
    let daemon = |path: &[&Path]| {
        Containerd::start_with_path(opts.daemon, path).map_err(|e| Error::Message(e.to_string()))
    };
    let (ours_daemon, go_daemon) = (daemon(&[shim_dir.path()])?, daemon(&[])?);
    let subject = |name, containerd| Subject {
        name,
        containerd,
        ns: format!("bench-{name}"),
    };
    let ours = subject("ours", &ours_daemon);
    let go = subject("go", &go_daemon);
    // Our daemon also finds the chroot example shim: the same calls with no runc behind them.
    let floor = subject("floor", &ours_daemon);
    let subjects = [&ours, &go];
    let rootfs = Rootfs::busybox().map_err(|e| Error::Message(e.to_string()))?;
    let rootfs_path = rootfs.path().display().to_string();
    let runc_root = tempfile::tempdir().map_err(|e| Error::io(Path::new("tempdir"), e))?;
    let _runc_cgroups = RuncStepsCgroups;
    let bundle = Bundle::busybox(&["/bin/true"]).map_err(|e| Error::Message(e.to_string()))?;
    println!(
        "bench: containerd {} ; {} samples per latency figure",
        opts.daemon.version(),
        opts.runs
    );

    // Running targets: one per shim for the exec figures, and one through the no-runc floor
    // shim; the runc shim's bundle also gives containerd's own spec for the runc figures.
    for s in subjects {
        s.ok(&ctr_run(RUNC_RUNTIME, &rootfs_path, "exec-target", true))?;
    }
    floor.ok(&ctr_run(FLOOR_RUNTIME, &rootfs_path, "exec-target", true))?;
    let steps_bundle = containerd_spec_bundle(&ours, "exec-target", &rootfs_path)?;

    // Start latency, interleaved: ours, go, then the floors and plain runc.
    let mut start_ms = [Vec::new(), Vec::new(), Vec::new()];
    let (mut start_floor_ms, mut start_runc_ms) = (Vec::new(), Vec::new());
    for i in 0..opts.runs {
        let id = format!("start-{i}");
        for k in order(i) {
            start_ms[k].push(ms(subjects[k].timed(&ctr_run(
                RUNC_RUNTIME,
                &rootfs_path,
                &id,
                false,
            ))?));
        }
        start_floor_ms.push(ms(floor.timed(&ctr_run(
            FLOOR_RUNTIME,
            &rootfs_path,
            &id,
            false,
        ))?));
        start_runc_ms.push(ms(runc_steps(
            runc_root.path(),
            &steps_bundle,
            &format!("steps-{i}"),
        )?));
        let t = Instant::now();
        runc(
            runc_root.path(),
            &[
                "run".as_ref(),
                "--bundle".as_ref(),
                bundle.path().as_os_str(),
                format!("runc-{i}").as_ref(),
            ],
        )?;
        start_ms[2].push(ms(t.elapsed()));
    }

    // Exec latency, interleaved, into the running targets; then the floors: the same exec
    // through the no-runc shim, and `runc exec` run directly into our shim's container.
    let mut exec_ms = [Vec::new(), Vec::new()];
    let (mut exec_floor_ms, mut exec_runc_ms) = (Vec::new(), Vec::new());
    let ours_runc_root = ctrd_testbed::runc_root(&ours.ns);
    for i in 0..opts.runs {
        let id = format!("e{i}");
        let exec = [
            "tasks",
            "exec",
            "--exec-id",
            id.as_str(),
            "exec-target",
            "/bin/true",
        ];
        for k in order(i) {
            exec_ms[k].push(ms(subjects[k].timed(&exec)?));
        }
        exec_floor_ms.push(ms(floor.timed(&exec)?));
        let t = Instant::now();
        runc(
            &ours_runc_root,
            &[
                "exec".as_ref(),
                "exec-target".as_ref(),
                "/bin/true".as_ref(),
            ],
        )?;
        exec_runc_ms.push(ms(t.elapsed()));
    }
    for s in subjects {
        s.remove_all(&["exec-target".to_owned()]);
    }
    floor.remove_all(&["exec-target".to_owned()]);

    // Idle footprint with 10, then 50, running containers.
    let mut idle = serde_json::Map::new();
    for count in [10usize, 50] {
        let ids: Vec<String> = (0..count).map(|i| format!("idle-{count}-{i}")).collect();
        for s in subjects {
            for id in &ids {
                s.ok(&ctr_run(RUNC_RUNTIME, &rootfs_path, id, true))?;
            }
        }
        std::thread::sleep(Duration::from_secs(2));
        for s in subjects {
            let pids = s.shim_pids();
            let n = pids.len().max(1) as u64;
            let (pss, rss, threads) = pids
                .iter()
                .map(|&p| footprint(p))
                .fold((0, 0, 0), |a, b| (a.0 + b.0, a.1 + b.1, a.2 + b.2));
            idle.insert(
                format!("{}_{count}", s.name),
                json!({ "shims": pids.len(), "pss_kib": pss / n, "rss_kib": rss / n, "threads": threads as f64 / n as f64 }),
            );
            s.remove_all(&ids);
        }
    }

    // Stdout throughput: 1 GiB written by the container into a FIFO this benchmark reads, with
    // the task made through the generated client (ctr's own copy would be what is measured).
    let mut throughput = [Vec::new(), Vec::new()];
    if !opts.quick {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::io(Path::new("runtime"), e))?;
        for i in 0..3 {
            for k in order(i) {
                let id = format!("tp-{i}");
                throughput[k].push(runtime.block_on(stdout_mib_s(
                    subjects[k],
                    &rootfs_path,
                    &id,
                ))?);
            }
        }
    }
    let throughput = throughput.map(median);

    // 50 concurrent starts: rounds alternating which shim goes first (the one measured right
    // after a mass removal shares the machine with the kernel's clean-up of it), median.
    let mut concurrent = [Vec::new(), Vec::new()];
    for round in 0..CONCURRENT_ROUNDS {
        for k in order(round) {
            let s = subjects[k];
            let ids: Vec<String> = (0..50).map(|i| format!("conc-{round}-{i}")).collect();
            let t = Instant::now();
            let children: Vec<_> = ids
                .iter()
                .map(|id| {
                    s.ctr(&ctr_run(RUNC_RUNTIME, &rootfs_path, id, true))
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .spawn()
                })
                .collect();
            let mut failed = 0;
            for child in children {
                let mut child = child.map_err(|e| Error::Message(format!("ctr: {e}")))?;
                if !child.wait().is_ok_and(|status| status.success()) {
                    failed += 1;
                }
            }
            concurrent[k].push(ms(t.elapsed()));
            s.remove_all(&ids);
            if failed > 0 {
                return Err(Error::Message(format!(
                    "{}: {failed} of 50 concurrent starts failed",
                    s.name
                )));
            }
        }
    }
    let concurrent = concurrent.map(median);

    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let go_binary = opts.daemon.bin_dir().join("containerd-shim-runc-v2");
    let results = json!({
        "daemon": opts.daemon.version(),
        "runs": opts.runs,
        "start_ms": { "ours": median(start_ms[0].clone()), "go": median(start_ms[1].clone()), "runc": median(start_ms[2].clone()) },
        "start_floor_ms": { "no_runc_shim": median(start_floor_ms), "runc_steps": median(start_runc_ms) },
        "exec_ms": { "ours": median(exec_ms[0].clone()), "go": median(exec_ms[1].clone()) },
        "exec_floor_ms": { "no_runc_shim": median(exec_floor_ms), "runc_steps": median(exec_runc_ms) },
        "idle": idle,
        "stdout_mib_s": { "ours": throughput[0], "go": throughput[1] },
        "concurrent_50_ms": { "ours": concurrent[0], "go": concurrent[1] },
        "binary_bytes": { "ours": size(&shim), "go": size(&go_binary) },
    });
    print_table(&results);
    let out = repo_root().join("target/bench");
    std::fs::create_dir_all(&out).map_err(|e| Error::io(&out, e))?;
    let file = out.join("results.json");
    std::fs::write(
        &file,
        serde_json::to_string_pretty(&results).unwrap_or_default(),
    )
    .map_err(|e| Error::io(&file, e))?;
    println!("\nbench: results written to {}", file.display());
    crate::log_bench::run(opts.quick || opts.runs <= 3)?;
    let mut missing = Vec::new();
    unmeasured(&results, "", &mut missing);
    missing.retain(|figure| !(opts.quick && figure.starts_with("stdout_mib_s")));
    if missing.is_empty() {
        Ok(())
    } else {
        Err(Error::Message(format!(
            "bench: figures not measured: {}",
            missing.join(", ")
        )))
    }
}

/// Paths of the figures in `value` that hold no positive number (NaN becomes null in JSON).
fn unmeasured(value: &serde_json::Value, path: &str, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(fields) => {
            for (name, v) in fields {
                let path = if path.is_empty() {
                    name.clone()
                } else {
                    format!("{path}.{name}")
                };
                unmeasured(v, &path, out);
            }
        }
        serde_json::Value::Number(n) if n.as_f64().is_some_and(|v| v > 0.0) => {}
        serde_json::Value::String(_) => {}
        _ => out.push(path.to_owned()),
    }
}

fn print_table(r: &serde_json::Value) {
    let f = |v: &serde_json::Value| v.as_f64().unwrap_or(f64::NAN);
    let row = |name: &str, ours: f64, go: f64, floor: Option<f64>, unit: &str| {
        let floor = floor.map_or("-".to_owned(), |v| format!("{v:.1}"));
        println!(
            "| {name:<34} | {ours:>10.1} | {go:>10.1} | {floor:>10} | {:>6.2}x | {unit}",
            ours / go
        );
    };
    println!(
        "\n| figure                             |       ours |     Go shim|  plain runc| ours/Go | unit"
    );
    println!(
        "|------------------------------------|-----------:|-----------:|-----------:|--------:|-----"
    );
    row(
        "start latency (median)",
        f(&r["start_ms"]["ours"]),
        f(&r["start_ms"]["go"]),
        Some(f(&r["start_ms"]["runc"])),
        "ms",
    );
    row(
        "exec latency (median)",
        f(&r["exec_ms"]["ours"]),
        f(&r["exec_ms"]["go"]),
        None,
        "ms",
    );
    for n in [10, 50] {
        let o = &r["idle"][format!("ours_{n}")];
        let g = &r["idle"][format!("go_{n}")];
        row(
            &format!("idle PSS per shim, {n} containers"),
            f(&o["pss_kib"]) / 1024.0,
            f(&g["pss_kib"]) / 1024.0,
            None,
            "MiB",
        );
        row(
            &format!("idle RSS per shim, {n} containers"),
            f(&o["rss_kib"]) / 1024.0,
            f(&g["rss_kib"]) / 1024.0,
            None,
            "MiB",
        );
        row(
            &format!("threads per shim, {n} containers"),
            f(&o["threads"]),
            f(&g["threads"]),
            None,
            "",
        );
    }
    row(
        "stdout throughput (1 GiB)",
        f(&r["stdout_mib_s"]["ours"]),
        f(&r["stdout_mib_s"]["go"]),
        None,
        "MiB/s",
    );
    row(
        "50 concurrent starts",
        f(&r["concurrent_50_ms"]["ours"]),
        f(&r["concurrent_50_ms"]["go"]),
        None,
        "ms",
    );
    row(
        "binary size",
        f(&r["binary_bytes"]["ours"]) / 1048576.0,
        f(&r["binary_bytes"]["go"]) / 1048576.0,
        None,
        "MiB",
    );

    // Where each latency goes: what no runc shim can avoid, and the shims' own shares.
    println!("\n| where a latency goes (medians, ms)                 |  start |   exec |");
    println!("|----------------------------------------------------|-------:|-------:|");
    let split = |what: &str| {
        let floor = &r[format!("{what}_floor_ms")];
        let total = &r[format!("{what}_ms")];
        let (ctr, runc) = (f(&floor["no_runc_shim"]), f(&floor["runc_steps"]));
        [
            ctr,
            runc,
            ctr + runc,
            (ctr + runc) / f(&total["go"]),
            f(&total["ours"]) - ctr - runc,
            f(&total["go"]) - ctr - runc,
        ]
    };
    let (start, exec) = (split("start"), split("exec"));
    for (i, name) in [
        "ctr, containerd and a minimal shim (no runc)",
        "runc's own commands, run directly",
        "lowest a shim driving runc can reach (sum)",
        "  that lowest, as a ratio to the Go shim",
        "our shim's own share (latency - sum)",
        "the Go shim's own share (latency - sum)",
    ]
    .iter()
    .enumerate()
    {
        println!("| {name:<50} | {:>6.2} | {:>6.2} |", start[i], exec[i]);
    }
}
