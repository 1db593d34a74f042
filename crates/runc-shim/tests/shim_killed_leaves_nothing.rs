//! Our shim killed with SIGKILL while its container runs and an exec runs in it: containerd
//! sees the task die, and its delete path (`ctr tasks rm -f`, then `ctr containers rm`, which
//! runs our shim's `delete` action) leaves no process, mount, runc state, socket or cgroup.
//! On every selected daemon.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{Bed, Shim, output_within, shim_pids};
use ctrd_testbed::Daemon;
use ctrd_testbed::cleanup::alive;
use ctrd_testbed::leftovers::left_behind;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const ID: &str = "victim";

/// Pids in the task's cgroup: its init and the exec.
fn task_processes(bed: &Bed) -> Vec<i32> {
    bed.ok(&["tasks", "ps", ID])
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect()
}

fn shim_killed(daemon: Daemon) {
    let on = format!("containerd {}", daemon.version());
    let mut bed = Bed::new(daemon, Shim::Ours);
    bed.ns = format!("shimkill-{}", daemon.version().replace('.', "-"));
    let rootfs = bed.rootfs();
    bed.ok(&["run", "-d", "--rootfs", &rootfs, ID, "/bin/sleep", "300"]);
    let exec = bed
        .ctr(&[
            "tasks",
            "exec",
            "--exec-id",
            "busy",
            ID,
            "/bin/sleep",
            "300",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ctr tasks exec");
    bed.eventually("the exec runs", || task_processes(&bed).len() >= 2);
    let processes = task_processes(&bed);
    let shims = shim_pids(bed.containerd());
    assert_eq!(shims.len(), 1, "{on}: one shim: {shims:?}");
    kill(Pid::from_raw(shims[0]), Signal::SIGKILL).expect("kill the shim");

    // The exec's client learns that its process is gone.
    let exec_out = output_within(exec, Duration::from_secs(20));
    bed.eventually("containerd sees the task stop", || {
        let status = bed.task_status(ID);
        status == "STOPPED" || status.is_empty() || status == "UNKNOWN"
    });
    let removed = bed.run(&["tasks", "rm", "-f", ID]);
    let container_removed = bed.run(&["containers", "rm", ID]);
    let deadline = Instant::now() + Duration::from_secs(15);
    let left = loop {
        let mut left = left_behind(bed.containerd(), &bed.ns, &[ID]);
        left.extend(
            processes
                .iter()
                .filter(|&&p| alive(Pid::from_raw(p)))
                .map(|p| format!("container process {p}")),
        );
        if left.is_empty() || Instant::now() > deadline {
            break left;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    println!(
        "{on}: after the shim's SIGKILL: exec client {:?}; tasks rm -f: {} {}; containers rm: \
         {} {}",
        exec_out.as_ref().map(|o| o.status),
        removed.status,
        String::from_utf8_lossy(&removed.stderr).trim(),
        container_removed.status,
        String::from_utf8_lossy(&container_removed.stderr).trim()
    );
    if !left.is_empty() {
        bed.sweep();
    }
    assert!(left.is_empty(), "{on}: left behind: {left:#?}");
    assert!(
        exec_out.is_some(),
        "{on}: the exec's ctr returned after its shim died"
    );
    assert!(
        container_removed.status.success(),
        "{on}: the container is removed: {}",
        String::from_utf8_lossy(&container_removed.stderr)
    );
}

#[test]
fn a_killed_shim_leaves_nothing_after_containerds_delete() {
    ctrd_testbed::require_root().unwrap_or_else(|e| panic!("{e}"));
    for daemon in Daemon::selected() {
        shim_killed(daemon);
    }
}
