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
