//! A runc that hangs is killed at the configured timeout, and the error says so.
//! (Its own binary: the fd-leak check elsewhere counts this process's fds.)

use ctrd_runc::{Error, Runc};

/// A runc that hangs is killed at the timeout, and the error says so.
#[test]
fn a_hung_runc_is_killed_at_the_timeout() {
    use std::os::unix::fs::PermissionsExt;
    use std::time::{Duration, Instant};

    let dir = tempfile::tempdir().expect("tempdir");
    let fake = dir.path().join("runc");
    // An argument nothing else on the machine uses, so the check below finds only this one.
    std::fs::write(&fake, "#!/bin/sh\nexec sleep 3017\n").expect("script");
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let runc = Runc::builder()
        .binary(&fake)
        .timeout(Duration::from_millis(300))
        .build();
    let started = Instant::now();
    let err = runc.state("c1").expect_err("hangs");
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
    let hung = std::fs::read_dir("/proc")
        .expect("proc")
        .filter_map(|e| e.ok())
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .filter(|c| c.as_slice() == b"sleep\x003017\x00")
        .count();
    assert_eq!(hung, 0, "the hung process was killed and reaped");
}
