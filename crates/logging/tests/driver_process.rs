//! `ctrd-log-driver` started exactly as a shim starts it (fds 3, 4, 5, `CONTAINER_ID` and
//! `CONTAINER_NAMESPACE` as its whole environment, options as `key value` pairs), without
//! containerd: the readiness answer, option errors, draining on SIGTERM.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::process::start;
use ctrd_logging::Stream;
use ctrd_logging::reader::{Format, LogReader};

fn read_all(path: &std::path::Path, format: Format) -> (Vec<u8>, Vec<u8>) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    for entry in LogReader::open(path, format).expect("open log") {
        let entry = entry.expect("entry");
        entry.append_to(if entry.stream == Stream::Stdout {
            &mut out
        } else {
            &mut err
        });
    }
    (out, err)
}

#[test]
fn ready_is_one_byte_then_close_and_output_arrives() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("c1.log");
    let mut d = start(&["sink", "cri", "path", log.to_str().expect("utf-8")]);
    assert_eq!(d.readiness(), vec![1], "one byte, then end of file");
    d.stdout
        .as_mut()
        .expect("stdout")
        .write_all(b"out 1\nout \xff 2")
        .expect("write");
    d.stderr
        .as_mut()
        .expect("stderr")
        .write_all(b"err 1\n")
        .expect("write");
    let (status, err) = d.wait();
    assert!(status.success(), "{status}: {err}");
    assert_eq!(
        read_all(&log, Format::Cri),
        (b"out 1\nout \xff 2".to_vec(), b"err 1\n".to_vec())
    );
}

#[test]
fn ready_close_writes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("c1.log");
    let mut d = start(&["ready", "close", "path", log.to_str().expect("utf-8")]);
    assert_eq!(d.readiness(), Vec::<u8>::new());
    let (status, err) = d.wait();
    assert!(status.success(), "{status}: {err}");
}

#[test]
fn bad_options_fail_before_ready_with_a_clear_message() {
    for (args, message) in [
        (&["sink", "json-file"][..], "option \"path\" is required"),
        (
            &["path", "/tmp/x.log", "max-size", "ten"],
            "option max-size=\"ten\" is invalid",
        ),
        (
            &["path", "/tmp/x.log", "colour", "red"],
            "unknown option \"colour\"",
        ),
        (
            &["path", "/tmp/x.log", "compress", "true"],
            "compress=true needs max-size",
        ),
        (&["path"], "odd number"),
        (
            &["path", "/nonexistent/dir/x.log"],
            "opening log file /nonexistent/dir/x.log",
        ),
    ] {
        let mut d = start(args);
        assert_eq!(d.readiness(), Vec::<u8>::new(), "{args:?}: no ready byte");
        let (status, err) = d.wait();
        assert_eq!(status.code(), Some(1), "{args:?}");
        assert!(err.contains(message), "{args:?}: {err}");
    }
}

#[test]
fn run_by_hand_it_says_what_it_is() {
    let out = Command::new(env!("CARGO_BIN_EXE_ctrd-log-driver"))
        .stdin(Stdio::null())
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("is not open: this program is a containerd log driver"),
        "{err}"
    );
}

#[test]
fn sigterm_during_a_burst_loses_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("c1.log");
    let mut d = start(&[
        "path",
        log.to_str().expect("utf-8"),
        "max-size",
        "200k",
        "max-file",
        "1000",
    ]);
    assert_eq!(d.readiness(), vec![1]);
    let mut stdout = d.stdout.take().expect("stdout");
    let mut expected = Vec::new();
    for i in 0..60_000 {
        expected.extend_from_slice(format!("line {i} of the burst\n").as_bytes());
    }
    let half = expected.len() / 2;
    stdout.write_all(&expected[..half]).expect("first half");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(d.child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("SIGTERM");
    stdout
        .write_all(&expected[half..])
        .expect("second half, after SIGTERM");
    drop(stdout);
    let (status, err) = d.wait();
    assert!(status.success(), "{status}: {err}");
    let (out, _) = read_all(&log, Format::JsonFile);
    assert!(
        out == expected,
        "{} bytes back of {}",
        out.len(),
        expected.len()
    );
}
