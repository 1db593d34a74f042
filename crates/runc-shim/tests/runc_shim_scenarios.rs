//! End-to-end scenarios through real containerd and `ctr`, run against our shim and, to prove
//! the tests test the right thing, against Debian's Go `containerd-shim-runc-v2`: output and
//! exit codes, detached run, exec with and without stdin, kill, pause/resume, ps, update,
//! `file://` log URIs, grouping, containerd restarted under running containers, and nothing
//! left behind.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::{Bed, Shim, shim_pids};
use ctrd_testbed::{Daemon, ImageArchive};

fn scenarios(daemon: Daemon, shim: Shim) {
    let mut bed = Bed::new(daemon, shim);
    let rootfs = bed.rootfs();

    // Output on both streams, and the exit code. (The pause before exiting is for the Go shim,
    // which copies output through pipes and can lose its tail when the process exits at once;
    // ours hands the FIFOs to the process and has no such race.)
    let out = bed.run(&[
        "run",
        "--rm",
        "--rootfs",
        &rootfs,
        "out",
        "/bin/sh",
        "-c",
        "echo to-out; echo to-err >&2; sleep 0.2; exit 3",
    ]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "to-out\n", "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "to-err\n");
    assert_eq!(out.status.code(), Some(3));

    // A terminal, sized from ctr's own terminal through ResizePty; and an exec with one.
    assert_eq!(
        bed.in_terminal(&[
            "run",
            "-t",
            "--rm",
            "--rootfs",
            &rootfs,
            "tty1",
            "/bin/sh",
            "-c",
            "sleep 0.3; stty size; tty"
        ]),
        "25 100\n/dev/pts/0\n"
    );

    // Signals: a SIGTERM handler in PID 1 decides the exit code.
    let mut trapped = bed
        .ctr(&[
            "run",
            "--rm",
            "--rootfs",
            &rootfs,
            "trap",
            "/bin/sh",
            "-c",
            "trap 'exit 42' TERM; while true; do sleep 0.1; done",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("ctr run");
    bed.eventually("trap runs", || bed.task_status("trap") == "RUNNING");
    std::thread::sleep(Duration::from_millis(300));
    bed.ok(&["tasks", "kill", "trap"]);
    assert_eq!(
        trapped.wait().expect("ctr run").code(),
        Some(42),
        "SIGTERM reached the handler"
    );

    // Detached run, exec with output and exit code, exec with stdin, ps, pause/resume.
    bed.ok(&["run", "-d", "--rootfs", &rootfs, "bg", "/bin/sleep", "300"]);
    bed.eventually("bg runs", || bed.task_status("bg") == "RUNNING");
    let out = bed.run(&[
        "tasks",
        "exec",
        "--exec-id",
        "e1",
        "bg",
        "/bin/sh",
        "-c",
        "echo exec-out; sleep 0.2; exit 4",
    ]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "exec-out\n");
    assert_eq!(out.status.code(), Some(4));
    let mut exec = bed
        .ctr(&["tasks", "exec", "--exec-id", "e2", "bg", "/bin/cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("exec -i");
    exec.stdin
        .take()
        .expect("stdin")
        .write_all(b"through stdin\n")
        .expect("write");
    let out = exec.wait_with_output().expect("exec -i");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "through stdin\n");
    assert!(out.status.success(), "exec -i exits when its stdin closes");
    let tty_exec = bed.in_terminal(&[
        "tasks",
        "exec",
        "-t",
        "--exec-id",
        "t1",
        "bg",
        "/bin/sh",
        "-c",
        "sleep 0.3; stty size",
    ]);
    assert_eq!(tty_exec, "25 100\n");
    let ps = bed.ok(&["tasks", "ps", "bg"]);
    assert!(
        ps.lines().count() >= 2,
        "ps lists the task's process:\n{ps}"
    );
    bed.ok(&["tasks", "pause", "bg"]);
    bed.eventually("bg pauses", || bed.task_status("bg") == "PAUSED");
    bed.ok(&["tasks", "resume", "bg"]);
    bed.eventually("bg resumes", || bed.task_status("bg") == "RUNNING");

    // Update through the generated client (ctr has no update command): a memory limit, read
    // back from the container's cgroup.
    bed.update_memory("bg", 67_108_864);
    let pid = bed
        .ok(&["tasks", "ls"])
        .lines()
        .find(|l| l.starts_with("bg "))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|p| p.parse::<u32>().ok())
        .expect("bg pid");
    assert_eq!(
        ctrd_testbed::cgroup::memory_limit(pid).expect("memory limit"),
        67_108_864
    );

    // Metrics of the host's cgroup version, with real figures.
    let metrics = bed.ok(&["tasks", "metrics", "bg"]);
    let figure = |name: &str| -> u64 {
        metrics
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in metrics:\n{metrics}"))
    };
    if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        assert_eq!(figure("memory.max"), 67_108_864, "{metrics}");
        assert!(figure("cpu.usage_usec") > 0, "{metrics}");
    } else {
        assert_eq!(figure("memory.limit_in_bytes"), 67_108_864, "{metrics}");
        assert!(figure("memory.usage_in_bytes") > 0, "{metrics}");
        assert!(
            figure("cpuacct.usage") > 0,
            "CPU usage is reported:\n{metrics}"
        );
    }
    assert!(figure("pids.current") >= 1, "{metrics}");

    // Containers keep running, and stay manageable, across a containerd restart.
    let shims_before = shim_pids(bed.containerd());
    bed.restart_containerd();
    assert_eq!(
        bed.task_status("bg"),
        "RUNNING",
        "the task survived containerd's restart"
    );
    let out = bed.run(&[
        "tasks",
        "exec",
        "--exec-id",
        "e3",
        "bg",
        "/bin/echo",
        "after-restart",
    ]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "after-restart\n");
    assert_eq!(
        shim_pids(bed.containerd()),
        shims_before,
        "the same shim still serves"
    );
    bed.remove("bg");

    // file:// log URI.
    let log_dir = tempfile::tempdir().expect("tempdir");
    let log = log_dir.path().join("out.log");
    bed.ok(&[
        "run",
        "--rm",
        &format!("--log-uri=file://{}", log.display()),
        "--rootfs",
        &rootfs,
        "logged",
        "/bin/sh",
        "-c",
        "echo into-the-file",
    ]);
    assert_eq!(
        std::fs::read_to_string(&log).expect("log file"),
        "into-the-file\n"
    );

    // binary:// log driver: fds 3 and 4 carry the streams, closing fd 5 says it is ready.
    let driver_dir = tempfile::tempdir().expect("tempdir");
    let driver = driver_dir.path().join("log-driver");
    std::fs::write(
        &driver,
        "#!/bin/sh\n\
         dir=$2\n\
         echo \"$CONTAINER_ID $CONTAINER_NAMESPACE\" > \"$dir/env\"\n\
         cat <&3 5>&- > \"$dir/out\" &\n\
         cat <&4 5>&- > \"$dir/err\" &\n\
         exec 5>&-\n\
         wait\n",
    )
    .expect("driver");
    std::fs::set_permissions(&driver, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let uri = format!(
        "--log-uri=binary://{}?dir={}",
        driver.display(),
        driver_dir.path().display()
    );
    bed.ok(&[
        "run",
        "--rm",
        &uri,
        "--rootfs",
        &rootfs,
        "driven",
        "/bin/sh",
        "-c",
        "echo to-driver; echo err-driver >&2",
    ]);
    let read =
        |name: &str| std::fs::read_to_string(driver_dir.path().join(name)).unwrap_or_default();
    bed.eventually("the log driver wrote both streams", || {
        read("out") == "to-driver\n" && read("err") == "err-driver\n"
    });
    assert_eq!(read("env"), format!("driven {}\n", bed.ns));

    // An OOM kill: exit 137 and a TaskOOM event.
    let mut events = bed
        .ctr(&["events"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("ctr events");
    std::thread::sleep(Duration::from_millis(300));
    let out = bed.run(&[
        "run",
        "--rm",
        "--memory-limit=16777216",
        "--rootfs",
        &rootfs,
        "oom",
        "/bin/sh",
        "-c",
        "tail /dev/zero",
    ]);
    assert_eq!(out.status.code(), Some(137), "{out:?}");
    std::thread::sleep(Duration::from_millis(300));
    let _ = events.kill();
    let seen = events.wait_with_output().expect("events");
    let seen = String::from_utf8_lossy(&seen.stdout);
    assert!(
        seen.lines()
            .any(|l| l.contains("/tasks/oom") && l.contains("\"oom\"")),
        "no TaskOOM for the container:\n{seen}"
    );

    // An image: the snapshotter's overlay mounts come in Create, and are gone after Delete.
    let image = ImageArchive::busybox("docker.io/library/ctrd-busybox:latest").expect("image");
    bed.ok(&["images", "import", &image.path().display().to_string()]);
    let out = bed.run(&[
        "run",
        "--rm",
        image.name(),
        "from-image",
        "/bin/sh",
        "-c",
        "echo from-image; cat /proc/self/mountinfo | head -n 1",
    ]);
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && printed.starts_with("from-image\n"),
        "{out:?}"
    );
    assert!(
        printed.contains("overlay"),
        "the rootfs is the snapshotter's overlay:\n{printed}"
    );
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    let state = bed.containerd().dir().display().to_string();
    assert!(
        !mounts
            .lines()
            .any(|l| l.contains(&state) && l.contains("rootfs")),
        "the container's rootfs is unmounted after delete"
    );

    // Two containers of one group share one shim.
    for id in ["g1", "g2"] {
        bed.ok(&[
            "run",
            "-d",
            "--annotation",
            "io.containerd.runc.v2.group=grp",
            "--rootfs",
            &rootfs,
            id,
            "/bin/sleep",
            "300",
        ]);
    }
    assert_eq!(
        shim_pids(bed.containerd()).len(),
        1,
        "one shim serves the group"
    );
    bed.remove("g1");
    bed.remove("g2");

    // Nothing left: no shim, no shim socket, no runc state.
    bed.eventually("every shim exits", || {
        shim_pids(bed.containerd()).is_empty()
    });
    // (Checked for our shim only: Debian's Go shim 2.1.9 leaves the socket of a grouped shim
    // behind after it exits.)
    let grpc = bed.containerd().grpc_address().display().to_string();
    for group in [
        "out",
        "tty1",
        "trap",
        "bg",
        "logged",
        "driven",
        "oom",
        "from-image",
        "grp",
    ] {
        let address = ctrd_shim::socket_address(&grpc, &bed.ns, group);
        let path = address.trim_start_matches("unix://");
        assert!(
            shim == Shim::Go || !Path::new(path).exists(),
            "the socket of {group} is left: {path}"
        );
    }
    let state = ctrd_testbed::runc_root(&bed.ns);
    let left: Vec<_> = std::fs::read_dir(&state)
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        left.is_empty(),
        "runc state left in {}: {left:?}",
        state.display()
    );
}

#[test]
fn ours_on_containerd_1_6() {
    scenarios(Daemon::Bookworm, Shim::Ours);
}

#[test]
fn ours_on_containerd_2_1() {
    scenarios(Daemon::Sid, Shim::Ours);
}

#[test]
fn go_shim_on_containerd_1_6() {
    scenarios(Daemon::Bookworm, Shim::Go);
}

#[test]
fn go_shim_on_containerd_2_1() {
    scenarios(Daemon::Sid, Shim::Go);
}

#[test]
#[ignore = "needs containerd 1.7: scripts/setup-testbed.sh --with-1.7, then --ignored"]
fn ours_on_containerd_1_7() {
    scenarios(Daemon::Trixie, Shim::Ours);
}

#[test]
#[ignore = "needs containerd 1.7: scripts/setup-testbed.sh --with-1.7, then --ignored"]
fn go_shim_on_containerd_1_7() {
    scenarios(Daemon::Trixie, Shim::Go);
}
