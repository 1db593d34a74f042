//! Execs started in a tight loop into a container whose init exits after 0.2 s: each exec
//! either runs (its output arrives) or gets a clear error, none hangs, and once the task is
//! deleted nothing is left (processes, mounts, runc state, sockets, cgroups). On every
//! selected daemon, a few rounds each.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{Bed, Shim, output_within};
use ctrd_testbed::Daemon;
use ctrd_testbed::leftovers::left_behind;

const ROUNDS: usize = 3;
/// How long one exec may take before it counts as hung.
const EXEC_LIMIT: Duration = Duration::from_secs(20);

#[derive(Debug, Default)]
struct Tally {
    ran: usize,
    refused: usize,
    problems: Vec<String>,
    errors: Vec<String>,
}

fn round(bed: &Bed, round: usize, tally: &mut Tally) {
    let id = format!("short-{round}");
    let rootfs = bed.rootfs();
    bed.ok(&[
        "run",
        "-d",
        "--rootfs",
        &rootfs,
        &id,
        "/bin/sh",
        "-c",
        "sleep 0.2",
    ]);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut n = 0;
    loop {
        n += 1;
        let exec_id = format!("x{n}");
        let child = bed
            .ctr(&[
                "tasks",
                "exec",
                "--exec-id",
                &exec_id,
                &id,
                "/bin/echo",
                &exec_id,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ctr tasks exec");
        match output_within(child, EXEC_LIMIT) {
            None => tally
                .problems
                .push(format!("{id} exec {exec_id} hung past {EXEC_LIMIT:?}")),
            Some(out) if out.status.success() => {
                let said = String::from_utf8_lossy(&out.stdout);
                if said.trim() == exec_id {
                    tally.ran += 1;
                } else {
                    tally
                        .problems
                        .push(format!("{id} exec {exec_id} succeeded but said {said:?}"));
                }
            }
            Some(out) => {
                let err = String::from_utf8_lossy(&out.stderr).trim().to_owned();
                // The exec was cut off by the container's end (its output may be partial),
                // or refused: either way ctr says something.
                if err.is_empty() && out.status.code() != Some(137) {
                    tally.problems.push(format!(
                        "{id} exec {exec_id} failed without a word: {}",
                        out.status
                    ));
                } else {
                    tally.refused += 1;
                    if tally.errors.len() < 5 && !tally.errors.contains(&err) {
                        tally.errors.push(err);
                    }
                }
            }
        }
        let status = bed.task_status(&id);
        if status == "STOPPED" || Instant::now() > deadline {
            break;
        }
    }
    // One more after the end: a clear refusal.
    let late = bed.run(&["tasks", "exec", "--exec-id", "late", &id, "/bin/true"]);
    if late.status.success() {
        tally
            .problems
            .push(format!("{id}: an exec into a stopped task succeeded"));
    }
    bed.ok(&["tasks", "delete", &id]);
    bed.ok(&["containers", "rm", &id]);
    let deadline = Instant::now() + Duration::from_secs(10);
    let left = loop {
        let left = left_behind(bed.containerd(), &bed.ns, &[&id]);
        if left.is_empty() || Instant::now() > deadline {
            break left;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    if !left.is_empty() {
        tally.problems.push(format!("{id}: left behind: {left:#?}"));
    }
}

fn racing(daemon: Daemon) {
    let on = format!("containerd {}", daemon.version());
    let mut bed = Bed::new(daemon, Shim::Ours);
    bed.ns = format!("execrace-{}", daemon.version().replace('.', "-"));
    let mut tally = Tally::default();
    for n in 0..ROUNDS {
        round(&bed, n, &mut tally);
    }
    println!(
        "{on}: {} execs ran, {} refused or cut off ({:?})",
        tally.ran, tally.refused, tally.errors
    );
    if !tally.problems.is_empty() {
        bed.sweep();
    }
    assert!(tally.problems.is_empty(), "{on}: {:#?}", tally.problems);
}

#[test]
fn execs_into_an_exiting_container_run_or_fail_clearly() {
    ctrd_testbed::require_root().unwrap_or_else(|e| panic!("{e}"));
    for daemon in Daemon::selected() {
        racing(daemon);
    }
}
