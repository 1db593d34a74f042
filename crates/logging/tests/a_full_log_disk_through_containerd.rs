//! A container run by containerd with our log driver (`ctr run --log-uri binary://…`), its
//! json-file log on a 1 MiB filesystem that fills while the container writes, with our runc
//! shim on every selected daemon (1.6, 2.1 and 2.4 by default):
//!
//! - the container is not held up: it writes 20,000 lines while the disk is full and goes on;
//! - the shim keeps answering (`ctr tasks ps` while the disk is full);
//! - the task's exit reaches `ctr run` (the container's own exit code, 3);
//! - what was written before the disk filled is unchanged, every line in the log is whole, in
//!   order and there once, and every line written after space returned is there;
//! - no driver, shim or container process is left.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{Bed, Shim, driver, drivers_of};
use ctrd_logging::reader::{Format, LogReader};
use ctrd_testbed::{Daemon, SmallFs, cleanup};

const BEFORE: usize = 500;
/// Lines written while the disk is full: far more than the driver's 256 KiB buffer holds.
const FULL: usize = 20_000;
const AFTER: usize = 500;

/// Every line the log holds (without its newline). `strict`: fails on a torn or unreadable
/// entry; otherwise stops at one (the driver may be writing the last line right now).
fn lines_in(log: &Path, strict: bool) -> Vec<String> {
    let Ok(reader) = LogReader::open(log, Format::JsonFile) else {
        return Vec::new();
    };
    let mut lines = Vec::new();
    for entry in reader {
        let entry = match entry {
            Ok(entry) if !entry.partial => entry,
            Ok(entry) if strict => panic!("a torn line: {:?}", entry.bytes),
            Err(e) if strict => panic!("an unreadable entry in the log: {e}"),
            _ => break,
        };
        lines.push(String::from_utf8_lossy(&entry.bytes).into_owned());
    }
    lines
}

/// Waits up to 30 s for `what`.
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn full_disk_under_the_log(daemon: Daemon) {
    let bed = Bed::new(daemon, Shim::Ours);
    let on = format!("containerd {}", daemon.version());
    let data = bed.rootfs.path().join("data");
    std::fs::create_dir_all(&data).expect("data folder");
    let disk = SmallFs::tmpfs(1 << 20).unwrap_or_else(|e| panic!("{e}"));
    let log = disk.path().join("c1.log");
    let uri = format!(
        "--log-uri=binary://{}?sink=json-file&path={}",
        driver().display(),
        log.display()
    );
    // The container writes in three phases; the test tells it when by files in /data.
    let script = format!(
        "i=0; while [ $i -lt {BEFORE} ]; do echo before-$i; i=$((i+1)); done; \
         while [ ! -e /data/full ]; do sleep 0.02; done; \
         i=0; while [ $i -lt {FULL} ]; do echo full-$i; i=$((i+1)); done; touch /data/written; \
         while [ ! -e /data/free ]; do sleep 0.02; done; \
         i=0; while [ $i -lt {AFTER} ]; do echo after-$i; i=$((i+1)); done; exit 3"
    );
    let rootfs = bed.rootfs.path().display().to_string();
    let id = "diskfull";
    let run = bed
        .ctr(&[
            "run", "--rm", &uri, "--rootfs", &rootfs, id, "/bin/sh", "-c", &script,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ctr run");

    let last_before = format!("before-{}", BEFORE - 1);
    eventually("the first lines reach the log", || {
        lines_in(&log, false).last() == Some(&last_before)
    });
    let before = std::fs::read(&log).expect("the log");
    disk.fill().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(data.join("full"), b"").expect("tell the container");
    eventually("the container writes on while the disk is full", || {
        data.join("written").exists()
    });
    let ps = bed
        .ctr(&["tasks", "ps", id])
        .output()
        .expect("ctr tasks ps");
    assert!(
        ps.status.success(),
        "{on}: the shim answers while the disk is full: {}",
        String::from_utf8_lossy(&ps.stderr)
    );
    // Let the driver meet the full disk, then give the space back.
    std::thread::sleep(Duration::from_millis(300));
    disk.free().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(data.join("free"), b"").expect("tell the container");

    let out = common_output_within(run, Duration::from_secs(60), &bed, id);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{on}: ctr run gets the container's exit code: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The driver ends once the container's pipes close.
    let ns = bed.ns.clone();
    eventually("the log driver exits", || drivers_of(&ns).is_empty());

    let after = std::fs::read(&log).expect("the log");
    assert!(
        after.starts_with(&before),
        "{on}: what was written before the disk filled is unchanged"
    );
    let lines = lines_in(&log, true);
    let mut expected = Vec::new();
    for (phase, count) in [("before", BEFORE), ("full", FULL), ("after", AFTER)] {
        expected.extend((0..count).map(|i| format!("{phase}-{i}")));
    }
    let mut next = expected.iter();
    for line in &lines {
        assert!(
            next.any(|e| e == line),
            "{on}: line {line:?} is out of order, repeated or torn"
        );
    }
    let count = |phase: &str| lines.iter().filter(|l| l.starts_with(phase)).count();
    assert_eq!(count("before-"), BEFORE, "{on}: every line from before");
    assert_eq!(
        count("after-"),
        AFTER,
        "{on}: logging resumed once space returned"
    );
    println!(
        "{on}: {} lines in the log: {BEFORE} before, {} of {FULL} while full, {AFTER} after; \
         ctr run exited 3",
        lines.len(),
        count("full-")
    );
    let left = ctrd_testbed::leftovers::left_behind(bed.containerd(), &bed.ns, &[id]);
    assert!(left.is_empty(), "{on}: left behind: {left:#?}");
}

/// `ctr run`'s output, or (after `limit`) kill it, remove the container and fail.
fn common_output_within(
    mut child: std::process::Child,
    limit: Duration,
    bed: &Bed,
    id: &str,
) -> std::process::Output {
    let deadline = Instant::now() + limit;
    loop {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("ctr output");
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("ctr output");
            bed.forget(id);
            cleanup::kill_all(&drivers_of(&bed.ns));
            panic!(
                "ctr run {id} did not end within {limit:?} (the container or shim is wedged): {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_full_log_disk_neither_wedges_the_container_nor_corrupts_its_log() {
    ctrd_testbed::require_root().unwrap_or_else(|e| panic!("{e}"));
    for daemon in Daemon::selected() {
        full_disk_under_the_log(daemon);
    }
}
