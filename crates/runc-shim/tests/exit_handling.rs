//! Exit handling, on our shim and on Debian's Go shim: an exec's exit is published before its
//! container's init exit; no exec starts once init has exited; and when a container without a
//! pid namespace of its own ends, its remaining processes are killed.

mod common;

use common::{Bed, Events, Shim};
use ctrd_testbed::Daemon;

fn exits(daemon: Daemon, shim: Shim) {
    let bed = Bed::new(daemon, shim);
    let rootfs = bed.rootfs();

    let mut events = Events::subscribe(&bed);

    // Init exits after a second while an exec still runs; the pid namespace takes the exec
    // down with it, and its exit must be published first.
    bed.ok(&[
        "run",
        "-d",
        "--rootfs",
        &rootfs,
        "ordered",
        "/bin/sleep",
        "1",
    ]);
    bed.ok(&[
        "tasks",
        "exec",
        "-d",
        "--exec-id",
        "lingering",
        "ordered",
        "/bin/sleep",
        "100",
    ]);
    bed.eventually("init exits", || bed.task_status("ordered") == "STOPPED");

    // No new exec once init has exited.
    let late = bed.run(&["tasks", "exec", "--exec-id", "late", "ordered", "/bin/true"]);
    assert!(!late.status.success(), "an exec started after init exited");

    // Both exits are published by now; wait for the init's (ids are JSON strings).
    events.wait_for("the init's exit", |l| {
        l.contains("/tasks/exit")
            && l.contains("\"ordered\"")
            && !l.contains("\"lingering\"")
            && l.matches("\"ordered\"").count() >= 2
    });
    let seen = events.seen().join("\n");
    let order: Vec<&str> = seen
        .lines()
        .filter(|l| l.contains("/tasks/exit") && l.contains("\"ordered\""))
        .map(|l| {
            if l.contains("\"lingering\"") {
                "exec"
            } else {
                "init"
            }
        })
        .collect();
    assert_eq!(order, ["exec", "init"], "exit events:\n{seen}");
    bed.remove("ordered");

    // A container that joins another's pid namespace (as pods share one): a background
    // process outlives its init unless the shim kills what remains when init exits.
    bed.ok(&[
        "run",
        "-d",
        "--rootfs",
        &rootfs,
        "holder",
        "/bin/sleep",
        "300",
    ]);
    let holder_pid = bed
        .ok(&["tasks", "ls"])
        .lines()
        .find(|l| l.starts_with("holder "))
        .and_then(|l| l.split_whitespace().nth(1))
        .map(str::to_owned)
        .expect("holder pid");
    let ns = format!("pid:/proc/{holder_pid}/ns/pid");
    bed.ok(&[
        "run",
        "-d",
        "--with-ns",
        &ns,
        "--rootfs",
        &rootfs,
        "shared",
        "/bin/sh",
        "-c",
        "/bin/sleep 313 & exec /bin/sleep 1",
    ]);
    bed.eventually("init exits", || bed.task_status("shared") == "STOPPED");
    bed.eventually("the background process is killed", || !sleeping_313());
    bed.remove("shared");
    bed.remove("holder");
}

/// Whether a `sleep 313` runs anywhere on the host.
fn sleeping_313() -> bool {
    std::fs::read_dir("/proc")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
                .any(|c| c == b"/bin/sleep\x00313\x00")
        })
        .unwrap_or(false)
}

#[test]
fn ours_on_containerd_1_6() {
    exits(Daemon::Bookworm, Shim::Ours);
}

#[test]
fn ours_on_containerd_2_1() {
    exits(Daemon::Sid, Shim::Ours);
}

#[test]
fn ours_on_containerd_2_4() {
    exits(Daemon::Upstream, Shim::Ours);
}

#[test]
fn go_shim_on_containerd_1_6() {
    exits(Daemon::Bookworm, Shim::Go);
}

#[test]
fn go_shim_on_containerd_2_1() {
    exits(Daemon::Sid, Shim::Go);
}

#[test]
fn go_shim_on_containerd_2_4() {
    exits(Daemon::Upstream, Shim::Go);
}
