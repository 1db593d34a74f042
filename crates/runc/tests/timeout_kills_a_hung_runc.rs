//! A runc that hangs is killed at the configured timeout, and the error says so; blocking and
//! async alike. (Its own binary: the fd-leak check elsewhere counts this process's fds.)

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use ctrd_runc::{Error, Runc};

/// A fake runc that hangs in `sleep SECONDS`; an argument nothing else on the machine uses, so
/// [`hung`] finds only this one.
fn hanging_runc(dir: &tempfile::TempDir, seconds: u32) -> PathBuf {
    let fake = dir.path().join("runc");
    std::fs::write(&fake, format!("#!/bin/sh\nexec sleep {seconds}\n")).expect("script");
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    fake
}

/// How many `sleep SECONDS` processes exist (zombies included).
fn hung(seconds: u32) -> usize {
    let cmdline = format!("sleep\0{seconds}\0");
    std::fs::read_dir("/proc")
        .expect("proc")
        .filter_map(|e| e.ok())
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .filter(|c| c.as_slice() == cmdline.as_bytes())
        .count()
}

/// A runc that hangs is killed at the timeout, and the error says so.
#[test]
fn a_hung_runc_is_killed_at_the_timeout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let runc = Runc::builder()
        .binary(hanging_runc(&dir, 3017))
        .timeout(Duration::from_millis(300))
        .build();
    let started = Instant::now();
    let err = runc.state("c1").expect_err("hangs");
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(hung(3017), 0, "the hung process was killed and reaped");
}

/// The async executor kills a hung runc the same way (through a pidfd taken at spawn, so the
/// kill can never reach a process that reused runc's pid) and reaps it.
#[cfg(feature = "async")]
#[tokio::test(flavor = "current_thread")]
async fn a_hung_async_runc_is_killed_at_the_timeout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let runc = Runc::builder()
        .binary(hanging_runc(&dir, 3019))
        .timeout(Duration::from_millis(300))
        .build()
        .to_async();
    let started = Instant::now();
    let err = runc.state("c1").await.expect_err("hangs");
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(hung(3019), 0, "the hung process was killed and reaped");
}

/// A caller's deadline (as a shim takes it from a ttrpc request) ends a hung runc the same
/// way, nearer than the configured timeout; a command begun after it has passed starts nothing.
#[cfg(feature = "async")]
#[tokio::test(flavor = "current_thread")]
async fn a_hung_async_runc_is_killed_at_the_callers_deadline() {
    use ctrd_runc::deadline::{with_deadline, without_deadline};
    let dir = tempfile::tempdir().expect("tempdir");
    let runc = Runc::builder()
        .binary(hanging_runc(&dir, 3023))
        .timeout(Duration::from_secs(60))
        .build()
        .to_async();
    let started = Instant::now();
    let deadline = started + Duration::from_millis(300);
    let err = with_deadline(deadline, runc.state("c1"))
        .await
        .expect_err("hangs");
    assert!(matches!(err, Error::DeadlineExceeded { .. }), "{err}");
    assert!(err.is_timeout());
    assert!(err.to_string().contains("caller's deadline"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(hung(3023), 0, "the hung process was killed and reaped");

    // Past the deadline nothing is started at all.
    let err = with_deadline(Instant::now(), runc.state("c1"))
        .await
        .expect_err("too late");
    assert!(matches!(err, Error::DeadlineExceeded { .. }), "{err}");
    assert_eq!(hung(3023), 0, "nothing was started");

    // Clean-up after the deadline escapes it (and meets the configured timeout instead).
    let quick = Runc::builder()
        .binary(hanging_runc(&dir, 3023))
        .timeout(Duration::from_millis(200))
        .build()
        .to_async();
    let err = with_deadline(Instant::now(), without_deadline(quick.state("c1")))
        .await
        .expect_err("hangs");
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    assert_eq!(hung(3023), 0);
}

/// A command future dropped before runc finished (a ttrpc server drops the handler of a request
/// whose deadline passed) kills runc rather than leaving it running unobserved.
#[cfg(feature = "async")]
#[tokio::test(flavor = "current_thread")]
async fn a_dropped_async_command_kills_its_runc() {
    let dir = tempfile::tempdir().expect("tempdir");
    let runc = Runc::builder()
        .binary(hanging_runc(&dir, 3029))
        .build()
        .to_async();
    let gave_up = tokio::time::timeout(Duration::from_millis(300), runc.state("c1")).await;
    assert!(gave_up.is_err(), "the fake runc hangs");
    // tokio reaps a dropped child in the background: give it a moment.
    let until = Instant::now() + Duration::from_secs(5);
    while hung(3029) != 0 && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(hung(3029), 0, "the dropped command's runc was killed");
}
