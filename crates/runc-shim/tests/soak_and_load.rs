//! Soak and load through our shim, on every selected daemon:
//!
//! - exec cycles into one task and create/start/kill/delete cycles of containers grouped into
//!   that task's shim, with the shim's open fds, threads, RSS and zombie children read before
//!   (after a warm-up) and after: no growth beyond [`Tolerance`];
//! - concurrent execs into one task, every one's output whole and its own;
//! - containers started and killed concurrently, every one's exit code its own.
//!
//! Each ends with nothing left: processes, mounts, runc state, sockets, cgroups
//! (`ctrd_testbed::leftovers`). Sizes: 100 execs, 30 cycles, 10 concurrent execs and 10
//! concurrent containers by default; `CTRD_SOAK=full` runs 1000, 300, 50 and 100. The figures
//! are printed (`cargo test -p ctrd-runc-shim --test soak_and_load -- --nocapture`).

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::{Mutex, mpsc};
use std::time::{Duration, Instant};

use common::{Bed, Shim, shim_pids};
use ctrd_testbed::Daemon;
use ctrd_testbed::leftovers::left_behind;

/// The tests share the machine's two cores: one at a time, so each one's figures are its own.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// The container every exec goes into, and the group the cycled containers join.
const ANCHOR: &str = "anchor";
/// The annotation that puts a container into another container's shim.
const GROUP: &str = "io.containerd.runc.v2.group";

/// How many of each.
#[derive(Debug, Clone, Copy)]
struct Sizes {
    execs: usize,
    cycles: usize,
    concurrent_execs: usize,
    containers: usize,
}

impl Sizes {
    fn chosen() -> Sizes {
        if std::env::var("CTRD_SOAK").is_ok_and(|v| v == "full") {
            Sizes {
                execs: 1000,
                cycles: 300,
                concurrent_execs: 50,
                containers: 100,
            }
        } else {
            Sizes {
                execs: 100,
                cycles: 30,
                concurrent_execs: 10,
                containers: 10,
            }
        }
    }
}

/// The growth allowed between the figures after warm-up and those after the soak, once the
/// shim is idle again: tokio's blocking threads linger a while after a burst, and the
/// allocator keeps some freed pages; fds and zombies must come back exactly.
struct Tolerance;

impl Tolerance {
    const FDS: i64 = 0;
    const THREADS: i64 = 2;
    const RSS_KIB: i64 = 1024;
}

/// A shim's figures at one moment.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Figures {
    fds: i64,
    threads: i64,
    rss_kib: i64,
    zombies: i64,
}

impl Figures {
    fn of(pid: i32) -> Figures {
        let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .map(|d| d.count() as i64)
            .unwrap_or(-1);
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let field = |name: &str| -> i64 {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
                .unwrap_or(-1)
        };
        Figures {
            fds,
            threads: field("Threads:"),
            rss_kib: field("VmRSS:"),
            zombies: zombie_children(pid),
        }
    }

    fn within(self, before: Figures) -> bool {
        self.fds - before.fds <= Tolerance::FDS
            && self.threads - before.threads <= Tolerance::THREADS
            && self.rss_kib - before.rss_kib <= Tolerance::RSS_KIB
            && self.zombies == 0
    }

    /// Waits (up to 15 s) for the shim to settle within tolerance of `before`; returns the
    /// last figures read either way.
    fn settled(pid: i32, before: Figures) -> Figures {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let now = Figures::of(pid);
            if now.within(before) || Instant::now() > deadline {
                return now;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

/// Children of `pid` in state Z.
fn zombie_children(pid: i32) -> i64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return -1;
    };
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter(|stat| {
            let mut rest = stat
                .rsplit_once(')')
                .map_or("", |(_, r)| r)
                .split_whitespace();
            let state = rest.next();
            let ppid = rest.next().and_then(|p| p.parse::<i32>().ok());
            state == Some("Z") && ppid == Some(pid)
        })
        .count() as i64
}

fn drift(what: &str, daemon: Daemon, before: Figures, after: Figures) -> String {
    format!(
        "containerd {} {what}: fds {} -> {} ({:+}), threads {} -> {} ({:+}), RSS {} -> {} KiB \
         ({:+}), zombies {} -> {}",
        daemon.version(),
        before.fds,
        after.fds,
        after.fds - before.fds,
        before.threads,
        after.threads,
        after.threads - before.threads,
        before.rss_kib,
        after.rss_kib,
        after.rss_kib - before.rss_kib,
        before.zombies,
        after.zombies
    )
}

fn bed(daemon: Daemon, name: &str) -> Bed {
    let mut bed = Bed::new(daemon, Shim::Ours);
    bed.ns = format!("{name}-{}", daemon.version().replace('.', "-"));
    bed
}

fn start_anchor(bed: &Bed) -> i32 {
    let rootfs = bed.rootfs();
    bed.ok(&[
        "run",
        "-d",
        "--rootfs",
        &rootfs,
        ANCHOR,
        "/bin/sleep",
        "3600",
    ]);
    let shims = shim_pids(bed.containerd());
    assert_eq!(shims.len(), 1, "one shim serves the anchor: {shims:?}");
    shims[0]
}

/// One exec that echoes its own name back.
fn exec_once(bed: &Bed, n: usize) {
    let id = format!("e{n}");
    let said = bed.ok(&["tasks", "exec", "--exec-id", &id, ANCHOR, "/bin/echo", &id]);
    assert_eq!(said, format!("{id}\n"), "exec {id}'s output");
}

/// One container in the anchor's shim: created, started, killed, deleted.
fn cycle_once(bed: &Bed, n: usize) {
    let id = format!("c{n}");
    let rootfs = bed.rootfs();
    let group = format!("--annotation={GROUP}={ANCHOR}");
    bed.ok(&[
        "run",
        "-d",
        &group,
        "--rootfs",
        &rootfs,
        &id,
        "/bin/sleep",
        "300",
    ]);
    bed.ok(&["tasks", "kill", "-s", "SIGKILL", &id]);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = bed.run(&["tasks", "delete", &id]);
        if out.status.success() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "task {id} not deleted 10 s after SIGKILL: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    bed.ok(&["containers", "rm", &id]);
}

/// Removes the anchor, waits for its shim to exit and returns what is left behind.
fn finish(bed: &Bed, shim: i32, groups: &[&str]) -> Vec<String> {
    bed.remove(ANCHOR);
    bed.eventually("the anchor's shim exits", || {
        !ctrd_testbed::cleanup::alive(nix::unistd::Pid::from_raw(shim))
    });
    left_behind(bed.containerd(), &bed.ns, groups)
}

fn soak(daemon: Daemon, sizes: Sizes) {
    let bed = bed(daemon, "soak");
    let shim = start_anchor(&bed);

    // Warm-up: the first calls load what the shim keeps (runc's version, the cgroup
    // paths, the allocator's arenas).
    for n in 0..10 {
        exec_once(&bed, n);
    }
    for n in 0..3 {
        cycle_once(&bed, n);
    }
    std::thread::sleep(Duration::from_secs(1));
    let warm = Figures::of(shim);

    let started = Instant::now();
    for n in 10..10 + sizes.execs {
        exec_once(&bed, n);
    }
    let exec_time = started.elapsed();
    let after_execs = Figures::settled(shim, warm);

    let started = Instant::now();
    for n in 3..3 + sizes.cycles {
        cycle_once(&bed, n);
    }
    let cycle_time = started.elapsed();
    let after_cycles = Figures::settled(shim, warm);

    let execs = drift(
        &format!("after {} execs ({exec_time:.1?})", sizes.execs),
        daemon,
        warm,
        after_execs,
    );
    let cycles = drift(
        &format!(
            "after {} create/start/kill/delete cycles ({cycle_time:.1?})",
            sizes.cycles
        ),
        daemon,
        warm,
        after_cycles,
    );
    println!("{execs}\n{cycles}");
    let left = finish(&bed, shim, &[ANCHOR]);
    assert!(after_execs.within(warm), "{execs}");
    assert!(after_cycles.within(warm), "{cycles}");
    assert!(left.is_empty(), "left behind: {left:#?}");
}

fn concurrent_execs(daemon: Daemon, sizes: Sizes) {
    let bed = bed(daemon, "cexec");
    let shim = start_anchor(&bed);
    const LINES: usize = 100;
    let started = Instant::now();
    let children: Vec<(String, Child)> = (0..sizes.concurrent_execs)
        .map(|n| {
            let id = format!("p{n}");
            let script = format!(
                "i=0; while [ $i -lt {LINES} ]; do echo {id}-$i; i=$((i+1)); done; exit {}",
                n % 100
            );
            let child = bed
                .ctr(&[
                    "tasks",
                    "exec",
                    "--exec-id",
                    &id,
                    ANCHOR,
                    "/bin/sh",
                    "-c",
                    &script,
                ])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("ctr tasks exec");
            (id, child)
        })
        .collect();
    let mut wrong = Vec::new();
    for (n, (id, child)) in children.into_iter().enumerate() {
        let out = child.wait_with_output().expect("ctr tasks exec");
        let expected: String = (0..LINES).map(|i| format!("{id}-{i}\n")).collect();
        let stdout = String::from_utf8_lossy(&out.stdout);
        if stdout != expected || out.status.code() != Some((n % 100) as i32) {
            wrong.push(format!(
                "{id}: exit {:?}, {} bytes of {}, stderr {}",
                out.status.code(),
                stdout.len(),
                expected.len(),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
    }
    let took = started.elapsed();
    let figures = Figures::settled(shim, Figures::of(shim));
    println!(
        "containerd {}: {} concurrent execs of {LINES} lines each in {took:.1?}, {} wrong; \
         shim then {figures:?}",
        daemon.version(),
        sizes.concurrent_execs,
        wrong.len()
    );
    let left = finish(&bed, shim, &[ANCHOR]);
    assert!(wrong.is_empty(), "execs answered wrong: {wrong:#?}");
    assert_eq!(figures.zombies, 0, "zombie children of the shim");
    assert!(left.is_empty(), "left behind: {left:#?}");
}

fn concurrent_containers(daemon: Daemon, sizes: Sizes) {
    let bed = bed(daemon, "ckill");
    let rootfs = bed.rootfs();
    let code = |n: usize| 10 + (n % 100) as i32;
    let started = Instant::now();
    let (ready_tx, ready_rx) = mpsc::channel();
    let mut runs: Vec<(String, Child)> = Vec::new();
    for n in 0..sizes.containers {
        let id = format!("k{n}");
        // PID 1 ignores SIGTERM without a handler: the trap answers it with this
        // container's own code, once it said it is ready.
        let script = format!("trap 'exit {}' TERM; echo ready; sleep 300 & wait", code(n));
        let mut child = bed
            .ctr(&[
                "run", "--rm", "--rootfs", &rootfs, &id, "/bin/sh", "-c", &script,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ctr run");
        let stdout = child.stdout.take().expect("stdout");
        let tx = ready_tx.clone();
        let name = id.clone();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send((name, line));
        });
        runs.push((id, child));
    }
    drop(ready_tx);
    let deadline = Instant::now() + Duration::from_secs(30 + sizes.containers as u64);
    let mut ready = 0;
    while ready < sizes.containers {
        let left = deadline.saturating_duration_since(Instant::now());
        match ready_rx.recv_timeout(left) {
            Ok((id, line)) => {
                assert_eq!(line.trim(), "ready", "container {id} said");
                ready += 1;
            }
            Err(_) => {
                bed.sweep();
                panic!(
                    "containerd {}: only {ready} of {} containers ready in time",
                    daemon.version(),
                    sizes.containers
                );
            }
        }
    }
    let up = started.elapsed();
    let kills: Vec<Child> = runs
        .iter()
        .map(|(id, _)| {
            bed.ctr(&["tasks", "kill", "-s", "SIGTERM", id])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("ctr tasks kill")
        })
        .collect();
    let mut wrong = Vec::new();
    for kill in kills {
        let out = kill.wait_with_output().expect("ctr tasks kill");
        if !out.status.success() {
            wrong.push(format!(
                "kill failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
    }
    for (n, (id, child)) in runs.into_iter().enumerate() {
        let out = child.wait_with_output().expect("ctr run");
        if out.status.code() != Some(code(n)) {
            wrong.push(format!(
                "{id}: exit {:?}, expected {}: {}",
                out.status.code(),
                code(n),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
    }
    let took = started.elapsed();
    println!(
        "containerd {}: {} containers up in {up:.1?}, killed and gone in {took:.1?}, {} wrong",
        daemon.version(),
        sizes.containers,
        wrong.len()
    );
    let groups: Vec<String> = (0..sizes.containers).map(|n| format!("k{n}")).collect();
    let groups: Vec<&str> = groups.iter().map(String::as_str).collect();
    let left = left_behind(bed.containerd(), &bed.ns, &groups);
    if !left.is_empty() {
        bed.sweep();
    }
    assert!(wrong.is_empty(), "containers answered wrong: {wrong:#?}");
    assert!(left.is_empty(), "left behind: {left:#?}");
}

fn each_daemon(test: fn(Daemon, Sizes)) {
    ctrd_testbed::require_root().unwrap_or_else(|e| panic!("{e}"));
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let sizes = Sizes::chosen();
    for daemon in Daemon::selected() {
        test(daemon, sizes);
    }
}

#[test]
fn exec_and_container_cycles_leave_the_shim_as_it_was() {
    each_daemon(soak);
}

#[test]
fn concurrent_execs_into_one_task_each_get_their_own_output() {
    each_daemon(concurrent_execs);
}

#[test]
fn containers_killed_concurrently_each_report_their_own_exit_code() {
    each_daemon(concurrent_containers);
}
