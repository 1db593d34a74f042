//! `cargo xtask bench --only snapshotter` with `CTRD_BENCH_STAT_PROFILE=DIR`: where a `Stat`
//! through containerd goes, per snapshotter, measured on the live processes.
//!
//! For each of our proxy snapshotter and the built-in overlayfs, a loop of `Stat`s through
//! containerd runs for a few seconds while `perf stat` counts containerd's (and our
//! snapshotter's) CPU time and context switches, then again under `perf record -g` on both
//! processes (the call graphs land in `DIR`, one `perf.data` per process and snapshotter, for
//! `perf report -i`). The figures are per call: wall time, each process's CPU time and its
//! context switches; the difference between the two snapshotters is what the proxy hop
//! costs, split into containerd's side and ours.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ctrd_api::containerd::services::snapshots::v1 as api;

use crate::Error;

/// How long each loop runs.
const LOOP: Duration = Duration::from_secs(6);

/// Counts from `perf stat` of one process during one loop.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    /// CPU time, ms.
    task_clock_ms: f64,
    context_switches: f64,
    syscalls: f64,
}

/// One snapshotter's loop: calls, wall time and each process's counts.
struct Sample {
    calls: usize,
    wall: Duration,
    containerd: Counts,
    ours: Counts,
}

/// Runs the Stat loops under `perf` for `snapshotters` (containerd's names; each has a
/// committed snapshot `key`), writing call graphs to `dir`, and prints the per-call table.
pub async fn run(
    dir: &Path,
    snapshots: &mut api::snapshots_client::SnapshotsClient<ctrd_client::Transport>,
    request: impl Fn(api::StatSnapshotRequest) -> tonic::Request<api::StatSnapshotRequest>,
    snapshotters: &[&str],
    key: &str,
    containerd_pid: u32,
    ours_pid: u32,
) -> Result<(), Error> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut rows = Vec::new();
    for name in snapshotters {
        // Counting first (cheap), then sampling call graphs (perturbs the timing).
        let containerd = perf_stat(containerd_pid, dir, &format!("{name}.containerd.stat"))?;
        let ours = perf_stat(ours_pid, dir, &format!("{name}.ours.stat"))?;
        let (calls, wall) = stat_loop(snapshots, &request, name, key).await?;
        let sample = Sample {
            calls,
            wall,
            containerd: finish_stat(containerd, dir, &format!("{name}.containerd.stat"))?,
            ours: finish_stat(ours, dir, &format!("{name}.ours.stat"))?,
        };
        rows.push((name.to_string(), sample));
        let records = [
            perf_record(containerd_pid, dir, &format!("{name}.containerd.data"))?,
            perf_record_dwarf(ours_pid, dir, &format!("{name}.ours.data"))?,
        ];
        stat_loop(snapshots, &request, name, key).await?;
        for record in records {
            stop(record)?;
        }
    }
    println!(
        "\nWhere a Stat goes (perf stat during {} s loops):\n",
        LOOP.as_secs()
    );
    println!(
        "| snapshotter | calls | wall µs/call | containerd CPU µs/call | containerd switches/call \
         | containerd syscalls/call | our CPU µs/call | our switches/call | our syscalls/call |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (name, s) in &rows {
        let per = |v: f64| v / s.calls as f64;
        println!(
            "| {name} | {} | {:.0} | {:.0} | {:.2} | {:.1} | {:.0} | {:.2} | {:.1} |",
            s.calls,
            s.wall.as_secs_f64() * 1e6 / s.calls as f64,
            per(s.containerd.task_clock_ms * 1e3),
            per(s.containerd.context_switches),
            per(s.containerd.syscalls),
            per(s.ours.task_clock_ms * 1e3),
            per(s.ours.context_switches),
            per(s.ours.syscalls),
        );
    }
    println!(
        "\nCall graphs: perf report -i {}/NAME.PROCESS.data --no-children",
        dir.display()
    );
    Ok(())
}

/// `Stat`s of `key` on `name` through containerd for [`LOOP`]; calls made and time taken.
async fn stat_loop(
    snapshots: &mut api::snapshots_client::SnapshotsClient<ctrd_client::Transport>,
    request: &impl Fn(api::StatSnapshotRequest) -> tonic::Request<api::StatSnapshotRequest>,
    name: &str,
    key: &str,
) -> Result<(usize, Duration), Error> {
    let start = Instant::now();
    let mut calls = 0;
    while start.elapsed() < LOOP {
        snapshots
            .stat(request(api::StatSnapshotRequest {
                snapshotter: name.into(),
                key: key.into(),
            }))
            .await
            .map_err(|e| Error::Message(format!("Stat on {name}: {e}")))?;
        calls += 1;
    }
    Ok((calls, start.elapsed()))
}

fn perf_stat(pid: u32, dir: &Path, name: &str) -> Result<Child, Error> {
    let out = dir.join(name);
    spawn_perf(&[
        "stat",
        "-x",
        ",",
        "-e",
        "task-clock,context-switches,raw_syscalls:sys_enter",
        "-o",
        &out.display().to_string(),
        "-p",
        &pid.to_string(),
    ])
}

fn perf_record(pid: u32, dir: &Path, name: &str) -> Result<Child, Error> {
    let out = dir.join(name);
    spawn_perf(&[
        "record",
        "-q",
        "-g",
        "-F",
        "2000",
        "-o",
        &out.display().to_string(),
        "-p",
        &pid.to_string(),
    ])
}

/// As [`perf_record`], unwinding from DWARF data (a release Rust build keeps no frame
/// pointers), sampled less often to keep the file small.
fn perf_record_dwarf(pid: u32, dir: &Path, name: &str) -> Result<Child, Error> {
    let out = dir.join(name);
    spawn_perf(&[
        "record",
        "-q",
        "--call-graph",
        "dwarf,16384",
        "-F",
        "500",
        "-o",
        &out.display().to_string(),
        "-p",
        &pid.to_string(),
    ])
}

fn spawn_perf(args: &[&str]) -> Result<Child, Error> {
    let child = Command::new("perf")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| Error::Message(format!("perf {}: {e} (is perf installed?)", args[0])))?;
    // perf attaches after it starts: give it a moment before the loop.
    std::thread::sleep(Duration::from_millis(300));
    Ok(child)
}

/// Ends a perf process the way Ctrl-C does (it writes its output on SIGINT).
fn stop(child: Child) -> Result<(), Error> {
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT);
    child
        .wait_with_output()
        .map_err(|e| Error::Message(format!("waiting for perf: {e}")))?;
    Ok(())
}

/// Stops `perf stat` and reads its CSV counts.
fn finish_stat(child: Child, dir: &Path, name: &str) -> Result<Counts, Error> {
    stop(child)?;
    let path = dir.join(name);
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    let mut counts = Counts::default();
    for line in text.lines() {
        let fields: Vec<&str> = line.split(',').collect();
        let (Some(value), Some(event)) = (fields.first(), fields.get(2)) else {
            continue;
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        if event.starts_with("task-clock") {
            counts.task_clock_ms = value;
        } else if event.starts_with("context-switches") {
            counts.context_switches = value;
        } else if event.starts_with("raw_syscalls:sys_enter") {
            counts.syscalls = value;
        }
    }
    Ok(counts)
}
