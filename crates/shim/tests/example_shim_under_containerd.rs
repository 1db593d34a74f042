//! The example shim, started by real containerd (1.6 and 2.1; 1.7 on request) through
//! `ctr run --runtime`: it answers create, start, state, wait and delete, its events reach
//! `ctr events`, `ctr task exec` runs processes beside a running task with their output and exit
//! codes, containers of one group share one shim, and nothing is left behind.

mod common;

use std::io::Read;
use std::process::Stdio;
use std::time::Duration;

use common::{ExampleBed, RUNTIME, eventually, output, shims};
use ctrd_testbed::Daemon;

fn run_and_watch(daemon: Daemon) {
    let bed = ExampleBed::start(daemon);
    let (containerd, rootfs) = (&bed.containerd, &bed.rootfs);
    let ns = "ctrd-shim-test";

    let mut events = containerd
        .ctr()
        .expect("ctr")
        .args(["--namespace", ns, "events"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("ctr events");
    std::thread::sleep(Duration::from_millis(300));

    let mut run = containerd.ctr().expect("ctr");
    run.args(["--namespace", ns, "run", "--rm", "--rootfs"])
        .arg(format!("--runtime={RUNTIME}"))
        .arg(rootfs.path())
        .args(["ex1", "/bin/sh", "-c", "echo hello from $0; exit 0"]);
    let out = output(run);
    assert_eq!(out, "hello from /bin/sh\n");

    // Exit codes travel through wait and TaskExit.
    let mut failing = containerd.ctr().expect("ctr");
    failing
        .args(["--namespace", ns, "run", "--rm", "--rootfs"])
        .arg(format!("--runtime={RUNTIME}"))
        .arg(rootfs.path())
        .args(["ex2", "/bin/sh", "-c", "exit 7"]);
    let status = failing.status().expect("ctr run");
    assert_eq!(
        status.code(),
        Some(7),
        "ctr run returns the task's exit code"
    );

    std::thread::sleep(Duration::from_millis(300));
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(events.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let mut seen = String::new();
    events
        .stdout
        .take()
        .expect("events stdout")
        .read_to_string(&mut seen)
        .expect("read events");
    let _ = events.wait();
    let order: Vec<&str> = seen
        .lines()
        .filter(|l| l.contains("\"ex1\""))
        .filter_map(|l| l.split_whitespace().find(|w| w.starts_with("/tasks/")))
        .collect();
    assert_eq!(
        order,
        [
            "/tasks/create",
            "/tasks/start",
            "/tasks/exit",
            "/tasks/delete"
        ],
        "events of ex1:\n{seen}"
    );
    assert!(
        seen.contains("\"exit_status\":7"),
        "TaskExit carries 7:\n{seen}"
    );

    // The shims logged through the bundle's FIFO, which containerd copies into its own log.
    let log = std::fs::read_to_string(containerd.log_path()).expect("containerd log");
    assert!(
        log.contains("msg=\"shim serving\""),
        "no shim log line in containerd's log:\n{log}"
    );

    // Both shims exited once their container was deleted, and removed their sockets.
    eventually("the example shims exit", || {
        shims(&containerd.grpc_address().display().to_string()).is_empty()
    });
}

fn grouped(daemon: Daemon) {
    let bed = ExampleBed::start(daemon);
    let (containerd, rootfs) = (&bed.containerd, &bed.rootfs);
    let ns = "ctrd-group";
    for id in ["g-a", "g-b"] {
        let mut run = containerd.ctr().expect("ctr");
        run.args(["--namespace", ns, "run", "-d", "--rootfs"])
            .arg(format!("--runtime={RUNTIME}"))
            .args(["--annotation", "io.containerd.runc.v2.group=pod-1"])
            .arg(rootfs.path())
            .args([id, "/bin/sleep", "300"]);
        output(run);
    }
    let address = containerd.grpc_address().display().to_string();
    let serving = shims(&address);
    assert_eq!(serving.len(), 1, "one shim serves the group: {serving:?}");

    let mut tasks = containerd.ctr().expect("ctr");
    tasks.args(["--namespace", ns, "tasks", "ls"]);
    let listed = output(tasks);
    assert!(listed.contains("g-a") && listed.contains("g-b"), "{listed}");

    for id in ["g-a", "g-b"] {
        let mut kill = containerd.ctr().expect("ctr");
        kill.args(["--namespace", ns, "tasks", "kill", "-s", "SIGKILL", id]);
        output(kill);
    }
    let ctr = |args: &[&str]| {
        let mut c = containerd.ctr().expect("ctr");
        c.args(["--namespace", ns]).args(args);
        c
    };
    eventually("both tasks stopped", || {
        output(ctr(&["tasks", "ls"])).matches("STOPPED").count() == 2
    });
    for id in ["g-a", "g-b"] {
        output(ctr(&["tasks", "delete", id]));
        output(ctr(&["containers", "rm", id]));
    }
    eventually("the group's shim exits with its last container", || {
        shims(&address).is_empty()
    });
}

fn exec_beside_a_task(daemon: Daemon) {
    let bed = ExampleBed::start(daemon);
    let (containerd, rootfs) = (&bed.containerd, &bed.rootfs);
    let ns = "ctrd-exec";
    let ctr = |args: &[&str]| {
        let mut c = containerd.ctr().expect("ctr");
        c.args(["--namespace", ns]).args(args);
        c
    };
    let mut run = ctr(&["run", "-d", "--rootfs"]);
    run.arg(format!("--runtime={RUNTIME}"))
        .arg(rootfs.path())
        .args(["x-1", "/bin/sleep", "300"]);
    output(run);

    let out = output(ctr(&[
        "tasks",
        "exec",
        "--exec-id",
        "say",
        "x-1",
        "/bin/sh",
        "-c",
        "echo from exec in $PWD",
    ]));
    assert_eq!(out, "from exec in /\n");
    let status = ctr(&[
        "tasks",
        "exec",
        "--exec-id",
        "fail",
        "x-1",
        "/bin/sh",
        "-c",
        "exit 5",
    ])
    .status()
    .expect("ctr tasks exec");
    assert_eq!(
        status.code(),
        Some(5),
        "ctr exec returns the exec's exit code"
    );
    // A finished exec's id is free again once ctr has deleted it.
    output(ctr(&[
        "tasks",
        "exec",
        "--exec-id",
        "say",
        "x-1",
        "/bin/true",
    ]));
    // The init process is still the one running.
    assert!(output(ctr(&["tasks", "ls"])).contains("RUNNING"));

    output(ctr(&["tasks", "kill", "-s", "SIGKILL", "x-1"]));
    eventually("the task stopped", || {
        output(ctr(&["tasks", "ls"])).contains("STOPPED")
    });
    output(ctr(&["tasks", "delete", "x-1"]));
    output(ctr(&["containers", "rm", "x-1"]));
    let address = containerd.grpc_address().display().to_string();
    eventually("the shim exits with its container", || {
        shims(&address).is_empty()
    });
}

#[test]
fn containerd_1_6() {
    run_and_watch(Daemon::Bookworm);
    exec_beside_a_task(Daemon::Bookworm);
    grouped(Daemon::Bookworm);
}

#[test]
fn containerd_2_1() {
    run_and_watch(Daemon::Sid);
    exec_beside_a_task(Daemon::Sid);
    grouped(Daemon::Sid);
}

#[test]
fn containerd_2_4() {
    run_and_watch(Daemon::Upstream);
    exec_beside_a_task(Daemon::Upstream);
    grouped(Daemon::Upstream);
}

#[test]
#[ignore = "needs containerd 1.7: scripts/setup-testbed.sh --with-1.7, then --ignored"]
fn containerd_1_7() {
    run_and_watch(Daemon::Trixie);
    exec_beside_a_task(Daemon::Trixie);
    grouped(Daemon::Trixie);
}
