//! `ctrd-log-driver` writing a json-file log on a 1 MiB tmpfs that fills up mid-run (started
//! as a shim starts it, without containerd): what was written before stays whole and
//! readable, what comes while the disk is full is dropped whole records at a time (never a
//! torn line), writing resumes as soon as space comes back, and the driver exits with an
//! error that names the lack of space and counts the failures.

mod common;

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use common::process::start;
use ctrd_logging::reader::{Format, LogReader};
use ctrd_testbed::SmallFs;

const LINES: usize = 1000;
/// Lines written while the disk is full: more than the driver's buffer holds.
const FULL_LINES: usize = 20_000;

/// Every line the log holds, as the container wrote it (without its newline).
fn lines_in(log: &Path) -> Vec<String> {
    LogReader::open(log, Format::JsonFile)
        .expect("open the log")
        .map(|entry| {
            let entry = entry.expect("every entry in the log is whole");
            assert!(!entry.partial, "a torn line: {:?}", entry.bytes);
            String::from_utf8_lossy(&entry.bytes).into_owned()
        })
        .collect()
}

fn write_lines(pipe: &mut impl Write, phase: &str, count: usize) {
    let text: String = (0..count).map(|i| format!("{phase}-{i}\n")).collect();
    pipe.write_all(text.as_bytes())
        .expect("write to the driver");
}

/// Waits (up to 10 s) until the log's last line is `last`.
fn wait_for_last(log: &Path, last: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while lines_in(log).last().map(String::as_str) != Some(last) {
        assert!(Instant::now() < deadline, "{last} never reached the log");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_full_disk_corrupts_nothing_written_and_writing_resumes() {
    let disk = SmallFs::tmpfs(1 << 20).unwrap_or_else(|e| panic!("{e}"));
    let log = disk.path().join("c1.log");
    let mut driver = start(&["path", log.to_str().expect("utf-8")]);
    assert_eq!(driver.readiness(), vec![1]);
    let mut stdout = driver.stdout.take().expect("stdout");

    write_lines(&mut stdout, "before", LINES);
    wait_for_last(&log, &format!("before-{}", LINES - 1));
    let before = std::fs::read(&log).expect("the log");

    disk.fill().unwrap_or_else(|e| panic!("{e}"));
    write_lines(&mut stdout, "full", FULL_LINES);
    // Let the driver meet the full disk.
    std::thread::sleep(Duration::from_millis(500));
    disk.free().unwrap_or_else(|e| panic!("{e}"));
    write_lines(&mut stdout, "after", LINES);
    drop(stdout);
    let (status, stderr) = driver.wait();

    let lines = lines_in(&log);
    let kept_full = lines.iter().filter(|l| l.starts_with("full-")).count();
    println!(
        "{} lines in the log: {LINES} before, {kept_full} of {FULL_LINES} while full, {} after; \
         driver: {status}, {}",
        lines.len(),
        lines.iter().filter(|l| l.starts_with("after-")).count(),
        stderr.trim()
    );
    let after = std::fs::read(&log).expect("the log");
    assert!(
        after.starts_with(&before),
        "what was written before the disk filled is unchanged"
    );
    // Every phase's lines appear in order, none twice, none torn.
    let mut expected = Vec::new();
    for (phase, count) in [("before", LINES), ("full", FULL_LINES), ("after", LINES)] {
        expected.extend((0..count).map(|i| format!("{phase}-{i}")));
    }
    let mut next = expected.iter();
    for line in &lines {
        assert!(
            next.any(|e| e == line),
            "line {line:?} is out of order, repeated or torn"
        );
    }
    let after_lines: Vec<&String> = lines.iter().filter(|l| l.starts_with("after-")).collect();
    assert_eq!(
        after_lines.len(),
        LINES,
        "every line after space came back was written"
    );
    if kept_full < FULL_LINES {
        assert_eq!(status.code(), Some(1), "a driver that lost lines says so");
        assert!(
            stderr.contains("No space left on device"),
            "the error names the full disk: {stderr}"
        );
    }
}
