//! End-to-end scenarios through real containerd and `ctr`, run against our shim and, to prove
//! the tests test the right thing, against Debian's Go `containerd-shim-runc-v2`: output and
//! exit codes, terminals, signals, exec with and without stdin, a failed exec, ps,
//! pause/resume, update, metrics, containerd restarted under a running container, `file://` and `binary://` logs,
//! OOM kills, image rootfs mounts, grouping, and nothing left behind.
//!
//! Each scenario is its own test per daemon and shim (`ours_on_containerd_1_6::oom_kill`), so
//! one failure hides nothing. The scenarios of one daemon and shim share one containerd,
//! started on first use and stopped when every test is done; they run one after another on
//! it, while the pairs run side by side. A failed scenario's containers are swept away so the
//! next starts clean. After all scenarios, `leaves_nothing_behind` checks each pair's shims,
//! sockets and runc state. (A custom harness, libtest-mimic, because the built-in one has no
//! fixture that outlives one test; filters and flags work as with `cargo test`.)

mod common;

use std::io::{BufRead, BufReader, Write};
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::path::Path;
use std::process::{ExitCode, Stdio};
use std::sync::{Arc, Mutex};

use common::{Bed, Events, Shim, shim_pids};
use ctrd_testbed::{Daemon, ImageArchive};
use libtest_mimic::{Arguments, Completion, Failed, Trial};

/// A scenario: a name, and what it does on a bed.
type Scenario = (&'static str, fn(&mut Bed));

const SCENARIOS: &[Scenario] = &[
    ("output_and_exit_code", output_and_exit_code),
    (
        "terminal_is_sized_by_resize_pty",
        terminal_is_sized_by_resize_pty,
    ),
    ("sigterm_reaches_the_handler", sigterm_reaches_the_handler),
    (
        "exec_into_a_running_container",
        exec_into_a_running_container,
    ),
    ("failed_exec_is_tidied_up", failed_exec_is_tidied_up),
    ("pause_and_resume", pause_and_resume),
    ("update_and_metrics", update_and_metrics),
    (
        "survives_a_containerd_restart",
        survives_a_containerd_restart,
    ),
    ("file_log_uri", file_log_uri),
    ("binary_log_driver", binary_log_driver),
    ("oom_kill", oom_kill),
    ("image_rootfs_is_unmounted", image_rootfs_is_unmounted),
    ("group_shares_one_shim", group_shares_one_shim),
    (
        "shim_oom_score_follows_containerd",
        shim_oom_score_follows_containerd,
    ),
    ("socket_in_the_daemons_folder", socket_in_the_daemons_folder),
];

/// The id of the running container several scenarios share.
const SLEEPER: &str = "bg";

/// The shim groups (container ids, unless grouped) the scenarios use.
const GROUPS: &[&str] = &[
    "out",
    "tty1",
    "trap",
    SLEEPER,
    "logged",
    "driven",
    "oom",
    "from-image",
    "grp",
    "oomadj-300",
    "oomadj-1000",
];

/// One containerd and shim pair, shared by its scenarios.
struct Fixture {
    daemon: Daemon,
    shim: Shim,
    ignored: bool,
    bed: Mutex<Option<Bed>>,
}

impl Fixture {
    fn new(daemon: Daemon, shim: Shim) -> Arc<Fixture> {
        Arc::new(Fixture {
            daemon,
            shim,
            // containerd 1.7 is installed only with scripts/setup-testbed.sh --with-1.7.
            ignored: daemon == Daemon::Trixie,
            bed: Mutex::new(None),
        })
    }

    fn name(&self) -> String {
        let shim = match self.shim {
            Shim::Ours => "ours",
            Shim::Go => "go_shim",
        };
        format!(
            "{shim}_on_containerd_{}",
            self.daemon.version().replace('.', "_")
        )
    }

    /// Runs a scenario on this pair's bed (starting it on first use); sweeps after a failure.
    fn run(&self, scenario: fn(&mut Bed)) -> Result<(), Failed> {
        let mut slot = self.bed.lock().unwrap_or_else(|p| p.into_inner());
        let bed = slot.get_or_insert_with(|| Bed::new(self.daemon, self.shim));
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| scenario(bed))) {
            bed.sweep();
            resume_unwind(panic);
        }
        Ok(())
    }

    /// Checks, after every scenario ran, that nothing is left of them.
    fn check_nothing_left(&self) -> Result<Completion, Failed> {
        let slot = self.bed.lock().unwrap_or_else(|p| p.into_inner());
        match slot.as_ref() {
            Some(bed) => {
                if !bed.task_status(SLEEPER).is_empty() {
                    bed.remove(SLEEPER);
                }
                leaves_nothing_behind(bed, self.shim);
                Ok(Completion::Completed)
            }
            None => Ok(Completion::ignored_with("no scenario ran on this pair")),
        }
    }
}

fn main() -> ExitCode {
    let args = Arguments::from_args();
    let fixtures: Vec<Arc<Fixture>> = [
        Daemon::Bookworm,
        Daemon::Sid,
        Daemon::Upstream,
        Daemon::Trixie,
    ]
    .into_iter()
    .flat_map(|d| [Fixture::new(d, Shim::Ours), Fixture::new(d, Shim::Go)])
    .collect();
    // Interleaved by pair, so the test threads mostly work on different daemons.
    let mut scenarios = Vec::new();
    for (name, scenario) in SCENARIOS {
        for fixture in &fixtures {
            let f = fixture.clone();
            let scenario = *scenario;
            scenarios.push(
                Trial::test(format!("{}::{name}", f.name()), move || f.run(scenario))
                    .with_ignored_flag(fixture.ignored),
            );
        }
    }
    let ran = libtest_mimic::run(&args, scenarios);
    let checks = fixtures
        .iter()
        .map(|fixture| {
            let f = fixture.clone();
            Trial::ignorable_test(format!("{}::leaves_nothing_behind", f.name()), move || {
                f.check_nothing_left()
            })
            .with_ignored_flag(fixture.ignored)
        })
        .collect();
    let checked = libtest_mimic::run(&args, checks);
    // Stops every daemon that was started.
    drop(fixtures);
    if ran.has_failed() || checked.has_failed() {
        ExitCode::from(101)
    } else {
        ExitCode::SUCCESS
    }
}

/// Output on both streams, and the exit code. (The pause before exiting is for the Go shim,
/// which copies output through pipes and can lose its tail when the process exits at once;
/// ours hands the FIFOs to the process and has no such race.)
fn output_and_exit_code(bed: &mut Bed) {
    let rootfs = bed.rootfs();
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
}

/// A shell line that waits (up to 5 s) until ctr's ResizePty has sized the terminal to the
/// 25x100 of `Bed::in_terminal`, then runs `then`. (Until runc's console is set up, `stty`
/// may fail; those attempts count as not sized yet.)
fn once_sized(then: &str) -> String {
    format!(
        "i=0; while [ \"$(stty size 2>/dev/null)\" != \"25 100\" ] && [ $i -lt 250 ]; \
         do sleep 0.02; i=$((i+1)); done; {then}"
    )
}

/// A terminal, sized from ctr's own terminal through ResizePty.
fn terminal_is_sized_by_resize_pty(bed: &mut Bed) {
    let rootfs = bed.rootfs();
    let script = once_sized("stty size; tty");
    assert_eq!(
        bed.in_terminal(&[
            "run", "-t", "--rm", "--rootfs", &rootfs, "tty1", "/bin/sh", "-c", &script
        ]),
        "25 100\n/dev/pts/0\n"
    );
}

/// A SIGTERM handler in PID 1 decides the exit code.
fn sigterm_reaches_the_handler(bed: &mut Bed) {
    let rootfs = bed.rootfs();
    let mut trapped = bed
        .ctr(&[
            "run",
            "--rm",
            "--rootfs",
            &rootfs,
            "trap",
            "/bin/sh",
            "-c",
            "trap 'exit 42' TERM; echo trapped; while true; do sleep 0.1; done",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("ctr run");
    // The handler is installed once the container says so.
    let mut first = String::new();
    BufReader::new(trapped.stdout.take().expect("stdout"))
        .read_line(&mut first)
        .expect("read");
    assert_eq!(first, "trapped\n");
    bed.ok(&["tasks", "kill", "trap"]);
    assert_eq!(
        trapped.wait().expect("ctr run").code(),
        Some(42),
        "SIGTERM reached the handler"
    );
}

/// The running container the scenarios that need one share (a `/bin/sleep 300`), started
/// when it does not run; `leaves_nothing_behind` removes it.
fn sleeper(bed: &Bed) -> &'static str {
    match bed.task_status(SLEEPER).as_str() {
        "RUNNING" => return SLEEPER,
        "" => {}
        _ => bed.remove(SLEEPER),
    }
    let rootfs = bed.rootfs();
    bed.ok(&[
        "run",
        "-d",
        "--rootfs",
        &rootfs,
        SLEEPER,
        "/bin/sleep",
        "300",
    ]);
    bed.eventually("the shared container runs", || {
        bed.task_status(SLEEPER) == "RUNNING"
    });
    SLEEPER
}

/// The shim listens in the folder the daemon chose: containerd 2.4 names it in the bootstrap
/// parameters (so this proves the shim read them), older daemons use the fixed folder.
fn socket_in_the_daemons_folder(bed: &mut Bed) {
    let id = sleeper(bed);
    let bundle = bed
        .containerd()
        .dir()
        .join("state/io.containerd.runtime.v2.task")
        .join(&bed.ns)
        .join(id);
    // containerd 2.x records what the shim answered in bootstrap.json; with 1.6, the shim
    // writes its address into the bundle.
    let address = match std::fs::read_to_string(bundle.join("bootstrap.json")) {
        Ok(json) => {
            serde_json::from_str::<serde_json::Value>(&json).expect("bootstrap.json")["address"]
                .as_str()
                .expect("an address in bootstrap.json")
                .to_owned()
        }
        Err(_) => std::fs::read_to_string(bundle.join("address")).expect("the bundle's address"),
    };
    let socket = Path::new(address.trim().trim_start_matches("unix://"));
    assert_eq!(
        socket.parent(),
        Some(bed.containerd().socket_dir().as_path()),
        "the shim listens at {address}"
    );
    assert!(socket.exists(), "{} exists", socket.display());
}

/// Exec with output and exit code, with stdin, with a terminal; ps lists the processes.
fn exec_into_a_running_container(bed: &mut Bed) {
    let bg = sleeper(bed);
    let out = bed.run(&[
        "tasks",
        "exec",
        "--exec-id",
        "e1",
        bg,
        "/bin/sh",
        "-c",
        "echo exec-out; sleep 0.2; exit 4",
    ]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "exec-out\n");
    assert_eq!(out.status.code(), Some(4));
    let mut exec = bed
        .ctr(&["tasks", "exec", "--exec-id", "e2", bg, "/bin/cat"])
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
    let script = once_sized("stty size");
    let tty_exec = bed.in_terminal(&[
        "tasks",
        "exec",
        "-t",
        "--exec-id",
        "t1",
        bg,
        "/bin/sh",
        "-c",
        &script,
    ]);
    assert_eq!(tty_exec, "25 100\n");
    let ps = bed.ok(&["tasks", "ps", bg]);
    assert!(
        ps.lines().count() >= 2,
        "ps lists the task's process:\n{ps}"
    );
}

/// An exec of a binary that does not exist, tidied up as containerd's CRI does after a
/// failed ExecSync: Start fails with runc's reason, the Wait issued before it returns, the
/// kill says there is nothing to kill (not "not found", which makes containerd wait for an
/// exit), and the exec can be deleted. Under containerd 1.6's CRI, a Wait that never
/// returned made ExecSync hang until the client gave up.
fn failed_exec_is_tidied_up(bed: &mut Bed) {
    let bg = sleeper(bed);
    let failed = bed.exec_missing_binary(bg, "missing");
    assert!(
        failed.start_error.contains("no such file or directory"),
        "Start fails with runc's reason: {failed:?}"
    );
    assert_eq!(
        failed.wait,
        Some(Ok(0)),
        "the Wait returns once Start has failed: {failed:?}"
    );
    assert_eq!(
        failed.kill,
        Some(ctrd_api::tonic::Code::FailedPrecondition),
        "nothing to kill: {failed:?}"
    );
    assert_eq!(failed.deleted, Ok(()), "{failed:?}");
    assert_eq!(bed.task_status(bg), "RUNNING");
}

fn pause_and_resume(bed: &mut Bed) {
    let bg = sleeper(bed);
    bed.ok(&["tasks", "pause", bg]);
    bed.eventually("the task pauses", || bed.task_status(bg) == "PAUSED");
    bed.ok(&["tasks", "resume", bg]);
    bed.eventually("the task resumes", || bed.task_status(bg) == "RUNNING");
}

/// Update through the generated client (ctr has no update command): a memory limit, read
/// back from the container's cgroup and in the metrics of the host's cgroup version.
fn update_and_metrics(bed: &mut Bed) {
    let bg = sleeper(bed);
    bed.update_memory(bg, 67_108_864);
    assert_eq!(
        ctrd_testbed::cgroup::memory_limit(bed.task_pid(bg)).expect("memory limit"),
        67_108_864
    );
    let metrics = bed.ok(&["tasks", "metrics", bg]);
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
}

/// A container keeps running, and stays manageable by the same shim, across a restart of
/// containerd.
fn survives_a_containerd_restart(bed: &mut Bed) {
    let bg = sleeper(bed);
    let shim = shim_pids(bed.containerd());
    bed.restart_containerd();
    assert_eq!(
        bed.task_status(bg),
        "RUNNING",
        "the task survived containerd's restart"
    );
    let out = bed.run(&[
        "tasks",
        "exec",
        "--exec-id",
        "e3",
        bg,
        "/bin/echo",
        "after-restart",
    ]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "after-restart\n");
    assert_eq!(
        shim_pids(bed.containerd()),
        shim,
        "the same shim still serves"
    );
}

fn file_log_uri(bed: &mut Bed) {
    let rootfs = bed.rootfs();
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
}

/// A `binary://` log driver: fds 3 and 4 carry the streams, closing fd 5 says it is ready.
fn binary_log_driver(bed: &mut Bed) {
    let rootfs = bed.rootfs();
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
}

/// An OOM kill: exit 137 and a TaskOOM event.
fn oom_kill(bed: &mut Bed) {
    let rootfs = bed.rootfs();
    let mut events = Events::subscribe(bed);
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
    events.wait_for("TaskOOM for the container", |l| {
        l.contains("/tasks/oom") && l.contains("\"oom\"")
    });
}

/// An image: the snapshotter's overlay mounts come in Create, and are gone after Delete.
fn image_rootfs_is_unmounted(bed: &mut Bed) {
    let image = ImageArchive::busybox("docker.io/library/ctrd-busybox:latest").expect("image");
    bed.ok(&["images", "import", &image.path().display().to_string()]);
    let out = bed.run(&[
        "run",
        "--rm",
        image.name(),
        "from-image",
        "/bin/sh",
        "-c",
        // The pause: the Go shim copies output through pipes and can lose the tail of a
        // process that exits at once (as in output_and_exit_code).
        "echo from-image; cat /proc/self/mountinfo | head -n 1; sleep 0.2",
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
}

/// Two containers of one group share one shim.
fn group_shares_one_shim(bed: &mut Bed) {
    let rootfs = bed.rootfs();
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
    // A serving shim's `-id` is the container it was started for (Go) or its group (ours).
    let serving = shim_pids(bed.containerd())
        .into_iter()
        .filter(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
            args.windows(2)
                .any(|w| w[0] == b"-id" && [&b"g1"[..], b"g2", b"grp"].contains(&w[1]))
        })
        .count();
    assert_eq!(serving, 1, "one shim serves the group");
    bed.remove("g1");
    bed.remove("g2");
}

/// Nothing left: no shim, no shim socket, no runc state.
/// The shim takes an OOM score one above containerd's, at most 1000, and its container
/// (whose spec sets none) starts from it.
fn shim_oom_score_follows_containerd(bed: &mut Bed) {
    let score = |pid: u32| -> i32 {
        std::fs::read_to_string(format!("/proc/{pid}/oom_score_adj"))
            .expect("oom_score_adj")
            .trim()
            .parse()
            .expect("a number")
    };
    let containerd = bed.containerd().pid();
    let rootfs = bed.rootfs();
    // Raising a score needs no privilege, so the daemon keeps it for the next scenarios.
    for (daemon, shim) in [(300, 301), (1000, 1000)] {
        std::fs::write(
            format!("/proc/{containerd}/oom_score_adj"),
            daemon.to_string(),
        )
        .expect("set containerd's oom_score_adj");
        let id = format!("oomadj-{daemon}");
        bed.ok(&["run", "-d", "--rootfs", &rootfs, &id, "/bin/sleep", "300"]);
        let init = bed.task_pid(&id);
        let parent = std::fs::read_to_string(format!("/proc/{init}/stat"))
            .ok()
            .and_then(|s| {
                s.rsplit_once(')')?
                    .1
                    .split_whitespace()
                    .nth(1)?
                    .parse()
                    .ok()
            })
            .expect("the container's parent, its shim");
        assert_eq!(
            score(parent),
            shim,
            "the shim's score under containerd at {daemon}"
        );
        assert_eq!(score(init), shim, "the container's score");
        bed.remove(&id);
    }
}

fn leaves_nothing_behind(bed: &Bed, shim: Shim) {
    bed.eventually("every shim exits", || {
        shim_pids(bed.containerd()).is_empty()
    });
    // (Checked for our shim only: Debian's Go shim 2.1.9 leaves the socket of a grouped shim
    // behind after it exits.)
    let grpc = bed.containerd().grpc_address().display().to_string();
    let socket_dir = bed.containerd().socket_dir().display().to_string();
    for group in GROUPS {
        let address = ctrd_shim::socket_address_in(&socket_dir, &grpc, &bed.ns, group);
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
