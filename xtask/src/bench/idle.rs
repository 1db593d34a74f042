//! Idle footprint: PSS, RSS, threads and the CPU time spent since boot per shim, with 10,
//! then 50, running containers.

use std::time::Duration;

use super::results::{Idle, IdleFigures};
use super::subject::{RUNC_RUNTIME, Subject, cpu_since_boot_ms, ctr_run, footprint};
use crate::Error;

/// Starts the containers under each shim, lets them settle, measures, removes them.
pub fn measure(subjects: [&Subject<'_>; 2], rootfs: &str) -> Result<IdleFigures, Error> {
    let mut figures = [[Idle::default(); 2]; 2];
    for (c, count) in [10usize, 50].into_iter().enumerate() {
        let ids: Vec<String> = (0..count).map(|i| format!("idle-{count}-{i}")).collect();
        for s in subjects {
            for id in &ids {
                s.ok(&ctr_run(RUNC_RUNTIME, rootfs, id, true))?;
            }
        }
        std::thread::sleep(Duration::from_secs(2));
        for (k, s) in subjects.into_iter().enumerate() {
            let pids = s.shim_pids();
            let n = pids.len().max(1) as u64;
            let (pss, rss, threads) = pids
                .iter()
                .map(|&p| footprint(p))
                .fold((0, 0, 0), |a, b| (a.0 + b.0, a.1 + b.1, a.2 + b.2));
            let cpu_ms: f64 = pids.iter().map(|&p| cpu_since_boot_ms(p)).sum();
            figures[c][k] = Idle {
                shims: pids.len(),
                pss_kib: pss / n,
                rss_kib: rss / n,
                threads: threads as f64 / n as f64,
                cpu_ms: cpu_ms / n as f64,
            };
            s.remove_all(&ids);
        }
    }
    let [[ours_10, go_10], [ours_50, go_50]] = figures;
    Ok(IdleFigures {
        ours_10,
        go_10,
        ours_50,
        go_50,
    })
}
