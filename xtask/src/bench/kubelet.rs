//! A kubelet-shaped load through CRI, on our shim (runtime handler `ctrd`) and the daemon's Go
//! shim (handler `runc`), each on its own CRI daemon of the same version, in one run:
//!
//! - pod start: RunPodSandbox, then two containers created and started (kubelet's order), per
//!   pod, the two shims alternating; also split into the sandbox and the containers;
//! - memory per pod: PSS and RSS of the pod's shim once every pod runs;
//! - stats: every second, as kubelet's stats provider does, ListContainerStats,
//!   ListPodSandboxStats and one ContainerStats call, timed; the shims' CPU time (utime +
//!   stime of every shim process) over the whole polling window, per poll; beside them a
//!   ContainerStatus, which containerd answers from its own store without the shim: the CRI
//!   round trip no shim can take off a ContainerStats; and containerd's own CPU time per
//!   poll, the work no shim can take off the list calls.
//!
//! `CTRD_BENCH_POD_PROFILE=DIR` also splits each pod start by what ran (runc, CNI, the shim's
//! `start` action, the rest) from a `perf record` of process starts and ends (`pod_profile.rs`).

use std::path::Path;
use std::time::{Duration, Instant};

use ctrd_api::runtime::v1 as cri;
use ctrd_testbed::{BUSYBOX_IMAGE, CriClient, CriDaemon, CriDaemonOptions, CriShim, Daemon, Pod};

use super::subject::footprint;
use super::{go_on, median, ms, order};
use crate::Error;

/// How big a run is.
#[derive(Debug, Clone, Copy)]
pub struct Size {
    /// Pods per shim (two containers each).
    pub pods: usize,
    /// Polls, one a second.
    pub polls: usize,
}

impl Size {
    /// The size: 20 pods of 2 containers, polled every second for a minute.
    pub const FULL: Size = Size {
        pods: 20,
        polls: 60,
    };
    /// The smoke run of `cargo xtask test`.
    pub const SMOKE: Size = Size { pods: 3, polls: 3 };
}

/// One shim's figures.
#[derive(Debug, Default, Clone, Copy)]
struct Figures {
    pod_start_ms: f64,
    sandbox_start_ms: f64,
    containers_start_ms: f64,
    /// CPU time of a pod's shim from its start to the first poll (its pod started and idle).
    start_cpu_ms_per_pod: f64,
    status_ms: f64,
    containerd_cpu_ms_per_poll: f64,
    pss_kib: u64,
    rss_kib: u64,
    rss_file_kib: u64,
    list_stats_ms: f64,
    pod_stats_ms: f64,
    single_stats_ms: f64,
    cpu_ms_per_poll: f64,
}

/// One shim under test: its CRI daemon and pods.
struct Side {
    name: &'static str,
    bed: CriDaemon,
    pods: Vec<(Pod, [String; 2])>,
}

/// Runs the load on both shims and prints the table.
pub fn run(daemon: Daemon, shim: &Path, size: Size) -> Result<(), Error> {
    let start = |kind| {
        let options = CriDaemonOptions {
            shim_binary: Some(shim.to_path_buf()),
            ..CriDaemonOptions::default()
        };
        CriDaemon::start_with(daemon, kind, options)
            .map_err(|e| Error::Message(format!("bench: CRI daemon: {e}")))
    };
    let mut sides = [
        Side {
            name: "ours",
            bed: start(CriShim::OursAsHandler)?,
            pods: Vec::new(),
        },
        Side {
            name: "go",
            bed: start(CriShim::Go)?,
            pods: Vec::new(),
        },
    ];
    println!(
        "\n==> kubelet-shaped load through CRI: containerd {}, {} pods of 2 containers per shim, \
         stats polled every second {} times",
        daemon.version(),
        size.pods,
        size.polls
    );

    let mut start_samples = [Vec::new(), Vec::new()];
    let mut sandbox_samples = [Vec::new(), Vec::new()];
    let mut containers_samples = [Vec::new(), Vec::new()];
    // CTRD_BENCH_POD_PROFILE=DIR: the kernel's record of every process started and ended
    // while the pods start, to split each pod start (pod_profile.rs).
    let profile = match std::env::var_os("CTRD_BENCH_POD_PROFILE") {
        Some(dir) => Some(super::pod_profile::Recorder::start(Path::new(&dir))?),
        None => None,
    };
    let mut windows = Vec::new();
    for i in 0..size.pods {
        for k in order(i) {
            go_on()?;
            let side = &mut sides[k];
            let began = Instant::now();
            let start_ns = super::pod_profile::now_ns();
            let (pod, sandbox) = start_pod(&side.bed, &format!("{}-{i}", side.name))?;
            let took = began.elapsed();
            windows.push(super::pod_profile::Window {
                side: k,
                start: start_ns,
                end: super::pod_profile::now_ns(),
            });
            start_samples[k].push(ms(took));
            sandbox_samples[k].push(ms(sandbox));
            containers_samples[k].push(ms(took.saturating_sub(sandbox)));
            side.pods.push(pod);
        }
    }
    if let Some(profile) = profile {
        profile.finish(&windows, [sides[0].name, sides[1].name])?;
    }
    std::thread::sleep(Duration::from_secs(2));

    let mut figures = [Figures::default(); 2];
    for (k, side) in sides.iter().enumerate() {
        let pids = side.bed.shim_pids();
        let (pss, rss) = pids.iter().fold((0, 0), |(p, r), &pid| {
            let (pss, rss, _) = footprint(pid as u32);
            (p + pss, r + rss)
        });
        let rss_file: u64 = pids.iter().map(|&pid| rss_file_kib(pid)).sum();
        let pods = side.pods.len().max(1) as u64;
        figures[k].pod_start_ms = median(std::mem::take(&mut start_samples[k]));
        figures[k].sandbox_start_ms = median(std::mem::take(&mut sandbox_samples[k]));
        figures[k].containers_start_ms = median(std::mem::take(&mut containers_samples[k]));
        figures[k].pss_kib = pss / pods;
        figures[k].rss_kib = rss / pods;
        figures[k].rss_file_kib = rss_file / pods;
    }

    let mut list = [Vec::new(), Vec::new()];
    let mut pod_stats = [Vec::new(), Vec::new()];
    let mut single = [Vec::new(), Vec::new()];
    let mut status = [Vec::new(), Vec::new()];
    let cpu_before: Vec<u64> = sides.iter().map(|s| shim_cpu_ticks(&s.bed)).collect();
    let daemon_before: Vec<u64> = sides.iter().map(|s| containerd_cpu_ticks(&s.bed)).collect();
    for poll in 0..size.polls {
        let tick = Instant::now();
        for k in order(poll) {
            go_on()?;
            let side = &sides[k];
            let client = side.bed.cri();
            let polled = poll_once(client, &side.pods[poll % side.pods.len()].1[0])?;
            list[k].push(polled.list);
            pod_stats[k].push(polled.pods);
            single[k].push(polled.single);
            status[k].push(polled.status);
        }
        if let Some(rest) = Duration::from_secs(1).checked_sub(tick.elapsed()) {
            std::thread::sleep(rest);
        }
    }
    let tick_ms = 1000.0 / clock_ticks_per_second();
    for (k, side) in sides.iter().enumerate() {
        figures[k].start_cpu_ms_per_pod =
            cpu_before[k] as f64 * tick_ms / side.pods.len().max(1) as f64;
        let used = shim_cpu_ticks(&side.bed).saturating_sub(cpu_before[k]);
        figures[k].cpu_ms_per_poll = used as f64 * tick_ms / size.polls.max(1) as f64;
        let used = containerd_cpu_ticks(&side.bed).saturating_sub(daemon_before[k]);
        figures[k].containerd_cpu_ms_per_poll = used as f64 * tick_ms / size.polls.max(1) as f64;
        figures[k].list_stats_ms = median(std::mem::take(&mut list[k]));
        figures[k].pod_stats_ms = median(std::mem::take(&mut pod_stats[k]));
        figures[k].single_stats_ms = median(std::mem::take(&mut single[k]));
        figures[k].status_ms = median(std::mem::take(&mut status[k]));
    }
    print(&figures, size);
    // Pods go with each side's client; the daemons after them.
    drop(sides);
    Ok(())
}

/// Starts a pod and its two containers as kubelet does; the pod and the containers' ids, and
/// how long RunPodSandbox took.
type Started = ((Pod, [String; 2]), Duration);

fn start_pod(bed: &CriDaemon, name: &str) -> Result<Started, Error> {
    let client = bed.cri();
    let fail = |e: ctrd_testbed::Error| Error::Message(format!("bench: pod {name}: {e}"));
    let began = Instant::now();
    let pod = client
        .run_pod(client.pod_config(name, false), bed.shim().handler())
        .map_err(fail)?;
    let sandbox = began.elapsed();
    let mut ids = [String::new(), String::new()];
    for (i, id) in ids.iter_mut().enumerate() {
        let config =
            CriClient::container_config(&format!("c{i}"), BUSYBOX_IMAGE, &["/bin/sleep", "3600"]);
        *id = client.run_container(&pod, config).map_err(fail)?;
    }
    Ok(((pod, ids), sandbox))
}

/// One poll's latencies (ms).
struct Polled {
    list: f64,
    pods: f64,
    single: f64,
    status: f64,
}

/// One poll: ListContainerStats, ListPodSandboxStats and ContainerStats of `container`, and
/// its ContainerStatus (no shim call), each timed.
fn poll_once(client: &CriClient, container: &str) -> Result<Polled, Error> {
    let fail = |call: &str, s: ctrd_api::tonic::Status| {
        Error::Message(format!("bench: {call}: {}", s.message()))
    };
    let began = Instant::now();
    client
        .runtime(|mut c| async move {
            c.list_container_stats(cri::ListContainerStatsRequest::default())
                .await
        })
        .map_err(|s| fail("ListContainerStats", s))?;
    let list = ms(began.elapsed());
    let began = Instant::now();
    client
        .runtime(|mut c| async move {
            c.list_pod_sandbox_stats(cri::ListPodSandboxStatsRequest::default())
                .await
        })
        .map_err(|s| fail("ListPodSandboxStats", s))?;
    let pods = ms(began.elapsed());
    let request = cri::ContainerStatsRequest {
        container_id: container.to_owned(),
    };
    let began = Instant::now();
    client
        .runtime(|mut c| async move { c.container_stats(request).await })
        .map_err(|s| fail("ContainerStats", s))?;
    let single = ms(began.elapsed());
    let request = cri::ContainerStatusRequest {
        container_id: container.to_owned(),
        verbose: false,
    };
    let began = Instant::now();
    client
        .runtime(|mut c| async move { c.container_status(request).await })
        .map_err(|s| fail("ContainerStatus", s))?;
    Ok(Polled {
        list,
        pods,
        single,
        status: ms(began.elapsed()),
    })
}

/// CPU time (user + system, clock ticks) of every shim process of `bed`.
fn shim_cpu_ticks(bed: &CriDaemon) -> u64 {
    bed.shim_pids().into_iter().filter_map(cpu_ticks).sum()
}

/// CPU time (user + system, clock ticks) of `bed`'s containerd itself.
fn containerd_cpu_ticks(bed: &CriDaemon) -> u64 {
    i32::try_from(bed.containerd().pid())
        .ok()
        .and_then(cpu_ticks)
        .unwrap_or(0)
}

/// The file-backed part of process `pid`'s RSS (KiB): its binary's and libraries' pages,
/// which every process mapping the same files shares.
fn rss_file_kib(pid: i32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("RssFile:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// CPU time (user + system, clock ticks) of process `pid`, if it still runs.
fn cpu_ticks(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command's closing parenthesis: state is the 3rd field of the line,
    // utime the 14th and stime the 15th.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

fn clock_ticks_per_second() -> f64 {
    rustix::param::clock_ticks_per_second() as f64
}

fn print(figures: &[Figures; 2], size: Size) {
    let [ours, go] = figures;
    let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { f64::NAN };
    println!("| figure | ours | Go shim | ratio | target |");
    println!("|---|---|---|---|---|");
    let row = |name: &str, a: f64, b: f64, unit: &str, target: &str| {
        println!(
            "| {name} | {a:.2} {unit} | {b:.2} {unit} | {:.2}x | {target} |",
            ratio(a, b)
        );
    };
    row(
        "pod start (sandbox + 2 containers running), median",
        ours.pod_start_ms,
        go.pod_start_ms,
        "ms",
        "<= 0.8x",
    );
    row(
        "- of which RunPodSandbox (pause container, CNI), median",
        ours.sandbox_start_ms,
        go.sandbox_start_ms,
        "ms",
        "",
    );
    row(
        "- of which 2 containers created and started, median",
        ours.containers_start_ms,
        go.containers_start_ms,
        "ms",
        "",
    );
    row(
        "- the pod's shim's CPU time, from its start to the pod running",
        ours.start_cpu_ms_per_pod,
        go.start_cpu_ms_per_pod,
        "ms",
        "",
    );
    row(
        "ContainerStats, median",
        ours.single_stats_ms,
        go.single_stats_ms,
        "ms",
        "<= 0.5x",
    );
    row(
        "ContainerStatus (containerd alone, no shim call), median",
        ours.status_ms,
        go.status_ms,
        "ms",
        "",
    );
    row(
        &format!("ListContainerStats ({} containers), median", size.pods * 2),
        ours.list_stats_ms,
        go.list_stats_ms,
        "ms",
        "<= 0.5x",
    );
    row(
        &format!("ListPodSandboxStats ({} pods), median", size.pods),
        ours.pod_stats_ms,
        go.pod_stats_ms,
        "ms",
        "<= 0.5x",
    );
    row(
        "shims' CPU per poll (all three calls)",
        ours.cpu_ms_per_poll,
        go.cpu_ms_per_poll,
        "ms",
        "<= 0.3x",
    );
    row(
        "containerd's own CPU per poll (all three calls)",
        ours.containerd_cpu_ms_per_poll,
        go.containerd_cpu_ms_per_poll,
        "ms",
        "",
    );
    row(
        "PSS per pod (its shim)",
        ours.pss_kib as f64 / 1024.0,
        go.pss_kib as f64 / 1024.0,
        "MiB",
        "<= 0.3x",
    );
    row(
        "RSS per pod (its shim)",
        ours.rss_kib as f64 / 1024.0,
        go.rss_kib as f64 / 1024.0,
        "MiB",
        "<= 0.3x",
    );
    row(
        "- of which file-backed (binary and libraries, shared)",
        ours.rss_file_kib as f64 / 1024.0,
        go.rss_file_kib as f64 / 1024.0,
        "MiB",
        "",
    );
}
