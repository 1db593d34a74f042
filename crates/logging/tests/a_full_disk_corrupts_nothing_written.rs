//! `ctrd-log-driver` writing a json-file log on a 1 MiB tmpfs that fills up mid-run (started
//! as a shim starts it, without containerd): what was written before stays whole and
//! readable, what comes while the disk is full is dropped whole records at a time (never a
//! torn line), writing resumes as soon as space comes back, and the exit status says whether
//! anything was lost: 1 with the exact count of lost records when the full disk outlasted the
//! driver's buffer, 0 when the buffer held everything until space returned.

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

/// The driver started on a fresh 1 MiB tmpfs, `before` lines already in its log.
fn started(disk: &SmallFs) -> (common::process::Driver, std::path::PathBuf, Vec<u8>) {
    let log = disk.path().join("c1.log");
    let mut driver = start(&["path", log.to_str().expect("utf-8")]);
    assert_eq!(driver.readiness(), vec![1]);
    let mut stdout = driver.stdout.take().expect("stdout");
    write_lines(&mut stdout, "before", LINES);
    wait_for_last(&log, &format!("before-{}", LINES - 1));
    driver.stdout = Some(stdout);
    let before = std::fs::read(&log).expect("the log");
    (driver, log, before)
}

/// Checks the log after a run with `full` lines written while the disk was full: the bytes
/// from before are unchanged, every phase in order, none twice or torn, every line after
/// space returned is there. Returns how many of the `full` lines were kept.
fn check_log(log: &Path, before: &[u8], full: usize) -> usize {
    let lines = lines_in(log);
    let after = std::fs::read(log).expect("the log");
    assert!(
        after.starts_with(before),
        "what was written before the disk filled is unchanged"
    );
    let mut expected = Vec::new();
    for (phase, count) in [("before", LINES), ("full", full), ("after", LINES)] {
        expected.extend((0..count).map(|i| format!("{phase}-{i}")));
    }
    let mut next = expected.iter();
    for line in &lines {
        assert!(
            next.any(|e| e == line),
            "line {line:?} is out of order, repeated or torn"
        );
    }
    let after_lines = lines.iter().filter(|l| l.starts_with("after-")).count();
    assert_eq!(
        after_lines, LINES,
        "every line after space came back was written"
    );
    lines.iter().filter(|l| l.starts_with("full-")).count()
}

/// More lines than the driver's 256 KiB buffer holds come while the disk is full: those that
/// do not fit are lost, and the driver exits 1 saying exactly how many.
#[test]
fn a_full_disk_corrupts_nothing_written_and_writing_resumes() {
    let disk = SmallFs::tmpfs(1 << 20).unwrap_or_else(|e| panic!("{e}"));
    let (mut driver, log, before) = started(&disk);
    let mut stdout = driver.stdout.take().expect("stdout");

    disk.fill().unwrap_or_else(|e| panic!("{e}"));
    write_lines(&mut stdout, "full", FULL_LINES);
    // Let the driver meet the full disk.
    std::thread::sleep(Duration::from_millis(500));
    disk.free().unwrap_or_else(|e| panic!("{e}"));
    write_lines(&mut stdout, "after", LINES);
    drop(stdout);
    let (status, stderr) = driver.wait();

    let kept_full = check_log(&log, &before, FULL_LINES);
    println!(
        "{kept_full} of {FULL_LINES} lines written while full were kept; driver: {status}, {}",
        stderr.trim()
    );
    assert!(kept_full < FULL_LINES, "the full disk outlasted the buffer");
    assert_eq!(status.code(), Some(1), "a driver that lost lines says so");
    let lost = FULL_LINES - kept_full;
    assert!(
        stderr.contains(&format!("{lost} of {} records", 2 * LINES + FULL_LINES)),
        "the error counts exactly the lost lines ({lost}): {stderr}"
    );
    assert!(
        stderr.contains("No space left on device"),
        "the error names the full disk: {stderr}"
    );
}

/// A few lines (less than the driver's buffer) come while the disk is full: they wait in the
/// buffer, are written once space returns, and the driver exits 0, though its sink failed
/// on the way (it says so on stderr).
#[test]
fn a_full_disk_the_buffer_outlasts_loses_nothing_and_exits_0() {
    const FEW: usize = 200;
    let disk = SmallFs::tmpfs(1 << 20).unwrap_or_else(|e| panic!("{e}"));
    let (mut driver, log, before) = started(&disk);
    let mut stdout = driver.stdout.take().expect("stdout");

    disk.fill().unwrap_or_else(|e| panic!("{e}"));
    // One line at a time, so the driver flushes (and fails) between them.
    for i in 0..FEW {
        stdout
            .write_all(format!("full-{i}\n").as_bytes())
            .expect("write to the driver");
        if i % 20 == 0 {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    disk.free().unwrap_or_else(|e| panic!("{e}"));
    write_lines(&mut stdout, "after", LINES);
    drop(stdout);
    let (status, stderr) = driver.wait();

    let kept_full = check_log(&log, &before, FEW);
    println!(
        "{kept_full} of {FEW} lines written while full were kept; driver: {status}, {}",
        stderr.trim()
    );
    assert_eq!(
        kept_full, FEW,
        "the buffer held every line until space returned"
    );
    assert!(status.success(), "nothing was lost: exit 0 ({stderr})");
    assert!(
        stderr.contains("recovered") && stderr.contains("No space left on device"),
        "stderr says the sink failed and recovered: {stderr}"
    );
}
