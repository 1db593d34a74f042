//! Stats of one container through containerd's Tasks service (`Metrics`, the call behind
//! CRI's ContainerStats), three ways in the same run: our shim reading the cgroup files, the
//! Go shim, and our shim asking runc (`runc events --stats`, one process per call, as it did
//! before it read the files). Latency per call (median), and the CPU each shim spends per
//! call (its own and its children's, from `/proc/PID/stat`, over many calls).

use std::path::Path;
use std::time::Instant;

use ctrd_api::containerd::services::tasks::v1::{GetRequest, MetricsRequest};
use ctrd_client::Client;
use ctrd_testbed::{Containerd, Daemon};

use super::results::{Pair, StatsFigure};
use super::subject::{RUNC_RUNTIME, Subject, ctr_run};
use super::{go_on, median, ms};
use crate::Error;

/// The container every subject answers Stats for.
const TARGET: &str = "stats-target";
/// The variable that makes our runc shim ask runc for Stats (`ctrd_runc_shim::STATS_FROM_RUNC`).
const STATS_FROM_RUNC: &str = "CTRD_RUNC_SHIM_STATS";

/// What the Stats figures measured: latency (median ms) and shim CPU per call (µs) for our
/// shim, the Go shim and our shim on the runc path, and the latency of `Tasks.Get` (a round
/// trip to the shim whose shim-side work is trivial: `State`) for our shim and the Go shim.
pub struct Measured {
    /// Stats latency.
    pub latency_ms: StatsFigure,
    /// Shim CPU per Stats call.
    pub cpu_us: StatsFigure,
    /// `Tasks.Get` latency.
    pub get_ms: Pair,
}

/// Measures Stats on our shim, the Go shim and our shim on the runc path (under a daemon of
/// its own, started here, whose shims get the variable).
pub fn measure(
    subjects: [&Subject<'_>; 2],
    daemon: Daemon,
    shim_dir: &Path,
    rootfs: &str,
    quick: bool,
) -> Result<Measured, Error> {
    let runc_daemon = Containerd::start_with_env(
        daemon,
        &[shim_dir],
        vec![(STATS_FROM_RUNC.into(), "runc".into())],
    )
    .map_err(|e| Error::Message(e.to_string()))?;
    let runc_path = Subject {
        name: "ours-runc",
        containerd: &runc_daemon,
        ns: "bench-ours-runc".into(),
    };
    let all = [subjects[0], subjects[1], &runc_path];
    for s in all {
        s.ok(&ctr_run(RUNC_RUNTIME, rootfs, TARGET, true))?;
    }
    let (calls, cpu_calls) = if quick { (50, 100) } else { (300, 1000) };
    let measured = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Message(format!("bench: a runtime: {e}")))?
        .block_on(measure_all(all, calls, cpu_calls));
    for s in all {
        s.remove_all(&[TARGET.to_owned()]);
    }
    measured
}

async fn measure_all(
    subjects: [&Subject<'_>; 3],
    calls: usize,
    cpu_calls: usize,
) -> Result<Measured, Error> {
    let mut clients = Vec::new();
    for s in subjects {
        let client = Client::connect(s.containerd.grpc_address())
            .await
            .map_err(|e| Error::Message(format!("{}: connecting: {e}", s.name)))?
            .with_namespace(&s.ns);
        clients.push(client);
    }
    // Warm up each path (first calls load the shim's code and caches).
    for (s, c) in subjects.iter().zip(&clients) {
        for _ in 0..5 {
            stats(s, c).await?;
        }
    }
    let mut samples = [Vec::new(), Vec::new(), Vec::new()];
    let mut gets = [Vec::new(), Vec::new()];
    for i in 0..calls {
        for k in 0..3 {
            let k = (k + i) % 3;
            let t = Instant::now();
            stats(subjects[k], &clients[k]).await?;
            samples[k].push(ms(t.elapsed()));
            if k < 2 {
                let t = Instant::now();
                get(subjects[k], &clients[k]).await?;
                gets[k].push(ms(t.elapsed()));
            }
        }
        if i % 50 == 0 {
            go_on()?;
        }
    }
    let mut cpu = [0.0; 3];
    for k in 0..3 {
        let shim = shim_of(subjects[k], &clients[k]).await?;
        let before = cpu_ticks(shim)?;
        for _ in 0..cpu_calls {
            stats(subjects[k], &clients[k]).await?;
        }
        let spent = cpu_ticks(shim)?.saturating_sub(before);
        cpu[k] = spent as f64 * micros_per_tick() / cpu_calls as f64;
        go_on()?;
    }
    let [ours, go, runc] = samples.map(median);
    Ok(Measured {
        latency_ms: StatsFigure {
            ours,
            go,
            runc_per_call: runc,
        },
        cpu_us: StatsFigure {
            ours: cpu[0],
            go: cpu[1],
            runc_per_call: cpu[2],
        },
        get_ms: Pair::median_of(gets),
    })
}

/// The target's task through containerd (`Tasks.Get`, which asks the shim for its `State`).
async fn get(s: &Subject<'_>, client: &Client) -> Result<u32, Error> {
    let task = client
        .tasks()
        .get(GetRequest {
            container_id: TARGET.into(),
            exec_id: String::new(),
        })
        .await
        .map_err(|e| Error::Message(format!("{}: Get: {e}", s.name)))?
        .into_inner();
    Ok(task.process.map(|p| p.pid).unwrap_or(0))
}

/// One Stats call for the target, through containerd; it must carry figures.
async fn stats(s: &Subject<'_>, client: &Client) -> Result<(), Error> {
    let response = client
        .tasks()
        .metrics(MetricsRequest {
            filters: vec![format!("id=={TARGET}")],
        })
        .await
        .map_err(|e| Error::Message(format!("{}: Metrics: {e}", s.name)))?
        .into_inner();
    if response.metrics.iter().any(|m| m.data.is_some()) {
        Ok(())
    } else {
        Err(Error::Message(format!(
            "{}: Metrics returned no figures",
            s.name
        )))
    }
}

/// The shim serving the target: its init process's parent.
async fn shim_of(s: &Subject<'_>, client: &Client) -> Result<u32, Error> {
    let pid = get(s, client).await?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| Error::Message(format!("{}: the target's process {pid}: {e}", s.name)))?;
    stat_field(&stat, 3)
        .ok_or_else(|| Error::Message(format!("{}: no parent in /proc/{pid}/stat", s.name)))
        .map(|ppid| ppid as u32)
}

/// Field `n` of a `/proc/PID/stat` line, counted from 0 (0 the pid, 3 the parent's pid).
fn stat_field(stat: &str, n: usize) -> Option<u64> {
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(n - 2)?
        .parse()
        .ok()
}

/// CPU time of `pid` and its reaped children, in clock ticks (utime, stime, cutime, cstime).
fn cpu_ticks(pid: u32) -> Result<u64, Error> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| Error::Message(format!("the shim {pid}: {e}")))?;
    (13..=16)
        .map(|n| stat_field(&stat, n))
        .sum::<Option<u64>>()
        .ok_or_else(|| Error::Message(format!("the shim {pid}: unreadable /proc/PID/stat")))
}

/// Microseconds per clock tick (`USER_HZ`, 100 on Linux).
fn micros_per_tick() -> f64 {
    1_000_000.0 / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_after_the_name() {
        // pid (comm) state ppid ... utime(13) stime(14) cutime(15) cstime(16)
        let line = "42 (containerd-shim) S 7 42 42 0 -1 4194560 1 2 3 4 11 12 13 14 20 0";
        assert_eq!(stat_field(line, 3), Some(7));
        assert_eq!(stat_field(line, 13), Some(11));
        assert_eq!(stat_field(line, 16), Some(14));
    }
}
