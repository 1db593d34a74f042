//! `cargo xtask bench`: our runc shim against Debian's Go shim, with plain `runc run` as the
//! floor, measured side by side in one interleaved run on private containerd daemons.
//!
//! Figures: start latency (`ctr run --rm … /bin/true`), exec latency (`ctr task exec …
//! /bin/true`), idle PSS/RSS/threads per shim with 10 and 50 containers, stdout throughput
//! (1 GiB through `ctr run`), 50 concurrent starts, and binary size. Results print as a table
//! with ratios to the Go shim and are written as JSON.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ctrd_testbed::{Bundle, Containerd, Daemon, Rootfs};
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

/// One shim under test, on its own daemon.
struct Subject {
    name: &'static str,
    containerd: Containerd,
    ns: String,
}

impl Subject {
    fn ctr(&self, args: &[&str]) -> Command {
        let mut c = self
            .containerd
            .ctr()
            .expect("the daemon's ctr exists once started");
        c.args(["--namespace", &self.ns]).args(args);
        c.stdin(Stdio::null());
        c
    }

    fn ok(&self, args: &[&str]) -> Result<(), Error> {
        let out = self
            .ctr(args)
            .output()
            .map_err(|e| Error::Message(format!("ctr: {e}")))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(Error::Message(format!(
                "{}: ctr {args:?} failed: {}",
                self.name,
                String::from_utf8_lossy(&out.stderr)
            )))
        }
    }

    fn timed(&self, args: &[&str]) -> Result<Duration, Error> {
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
async fn stdout_mib_s(s: &Subject, rootfs: &str, id: &str) -> Result<f64, Error> {
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
    crate::suite::setup_testbed()?;
    let shim = crate::suite::build_release_shim()?;
    let shim_dir = tempfile::Builder::new()
        .prefix("ctrd-bench-")
        .tempdir()
        .map_err(|e| Error::io(Path::new("tempdir"), e))?;
    std::os::unix::fs::symlink(&shim, shim_dir.path().join("containerd-shim-runc-v2"))
        .map_err(|e| Error::io(&shim, e))?;
    let start = |name: &'static str, path: &[&Path]| -> Result<Subject, Error> {
        Ok(Subject {
            name,
            containerd: Containerd::start_with_path(opts.daemon, path)
                .map_err(|e| Error::Message(e.to_string()))?,
            ns: format!("bench-{name}"),
        })
    };
    let ours = start("ours", &[shim_dir.path()])?;
    let go = start("go", &[])?;
    let subjects = [&ours, &go];
    let rootfs = Rootfs::busybox().map_err(|e| Error::Message(e.to_string()))?;
    let rootfs_path = rootfs.path().display().to_string();
    let runc_root = tempfile::tempdir().map_err(|e| Error::io(Path::new("tempdir"), e))?;
    let bundle = Bundle::busybox(&["/bin/true"]).map_err(|e| Error::Message(e.to_string()))?;
    println!(
        "bench: containerd {} ; {} samples per latency figure",
        opts.daemon.version(),
        opts.runs
    );

    // Start latency, interleaved: ours, go, plain runc.
    let mut start_ms = [Vec::new(), Vec::new(), Vec::new()];
    for i in 0..opts.runs {
        for k in order(i) {
            let s = subjects[k];
            let id = format!("start-{i}");
            start_ms[k].push(ms(s.timed(&[
                "run",
                "--rm",
                "--rootfs",
                &rootfs_path,
                &id,
                "/bin/true",
            ])?));
        }
        let id = format!("runc-{i}");
        let t = Instant::now();
        let status = Command::new("runc")
            .arg("--root")
            .arg(runc_root.path())
            .args(["run", "--bundle"])
            .arg(bundle.path())
            .arg(&id)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()
            .map_err(|e| Error::Message(format!("runc: {e}")))?;
        start_ms[2].push(ms(t.elapsed()));
        if !status.success() {
            return Err(Error::Message(format!("runc run failed ({status})")));
        }
    }

    // Exec latency, interleaved, into one running container per shim.
    for s in subjects {
        s.ok(&[
            "run",
            "-d",
            "--rootfs",
            &rootfs_path,
            "exec-target",
            "/bin/sleep",
            "3600",
        ])?;
    }
    let mut exec_ms = [Vec::new(), Vec::new()];
    for i in 0..opts.runs {
        for k in order(i) {
            let s = subjects[k];
            let id = format!("e{i}");
            exec_ms[k].push(ms(s.timed(&[
                "tasks",
                "exec",
                "--exec-id",
                &id,
                "exec-target",
                "/bin/true",
            ])?));
        }
    }
    for s in subjects {
        s.remove_all(&["exec-target".to_owned()]);
    }

    // Idle footprint with 10, then 50, running containers.
    let mut idle = serde_json::Map::new();
    for count in [10usize, 50] {
        let ids: Vec<String> = (0..count).map(|i| format!("idle-{count}-{i}")).collect();
        for s in subjects {
            for id in &ids {
                s.ok(&[
                    "run",
                    "-d",
                    "--rootfs",
                    &rootfs_path,
                    id,
                    "/bin/sleep",
                    "3600",
                ])?;
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
    let mut throughput = [f64::NAN, f64::NAN];
    if !opts.quick {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::io(Path::new("runtime"), e))?;
        for (k, s) in subjects.iter().enumerate() {
            let mut samples = Vec::new();
            for i in 0..3 {
                samples.push(runtime.block_on(stdout_mib_s(
                    s,
                    &rootfs_path,
                    &format!("tp-{i}"),
                ))?);
            }
            throughput[k] = median(samples);
        }
    }

    // 50 concurrent starts.
    let mut concurrent = [0.0f64; 2];
    for (k, s) in subjects.iter().enumerate() {
        let ids: Vec<String> = (0..50).map(|i| format!("conc-{i}")).collect();
        let t = Instant::now();
        let children: Vec<_> = ids
            .iter()
            .map(|id| {
                s.ctr(&[
                    "run",
                    "-d",
                    "--rootfs",
                    &rootfs_path,
                    id,
                    "/bin/sleep",
                    "3600",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
            })
            .collect();
        for child in children {
            let mut child = child.map_err(|e| Error::Message(format!("ctr: {e}")))?;
            let _ = child.wait();
        }
        concurrent[k] = ms(t.elapsed());
        s.remove_all(&ids);
    }

    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let go_binary = opts.daemon.bin_dir().join("containerd-shim-runc-v2");
    let results = json!({
        "daemon": opts.daemon.version(),
        "runs": opts.runs,
        "start_ms": { "ours": median(start_ms[0].clone()), "go": median(start_ms[1].clone()), "runc": median(start_ms[2].clone()) },
        "exec_ms": { "ours": median(exec_ms[0].clone()), "go": median(exec_ms[1].clone()) },
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
    Ok(())
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
}
