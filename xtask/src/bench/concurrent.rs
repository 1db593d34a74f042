//! 50 concurrent starts: rounds alternating which shim goes first (the one measured right
//! after a mass removal shares the machine with the kernel's clean-up of it), median.

use std::process::Stdio;
use std::time::Instant;

use super::results::Pair;
use super::subject::{RUNC_RUNTIME, Subject, ctr_run};
use super::{ms, order};
use crate::Error;

/// Rounds of the figure.
const ROUNDS: usize = 3;

/// How long 50 detached `ctr run`s started at once take, per shim; every one must succeed.
pub fn measure(subjects: [&Subject<'_>; 2], rootfs: &str) -> Result<Pair, Error> {
    let mut samples = [Vec::new(), Vec::new()];
    for round in 0..ROUNDS {
        for k in order(round) {
            let s = subjects[k];
            let ids: Vec<String> = (0..50).map(|i| format!("conc-{round}-{i}")).collect();
            let t = Instant::now();
            let children: Vec<_> = ids
                .iter()
                .map(|id| {
                    s.ctr(&ctr_run(RUNC_RUNTIME, rootfs, id, true))
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
            samples[k].push(ms(t.elapsed()));
            s.remove_all(&ids);
            if failed > 0 {
                return Err(Error::Message(format!(
                    "{}: {failed} of 50 concurrent starts failed",
                    s.name
                )));
            }
        }
    }
    Ok(Pair::median_of(samples))
}
