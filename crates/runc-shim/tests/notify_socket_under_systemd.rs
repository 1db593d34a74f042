//! containerd run by systemd as a notify service (Debian's `containerd.service`) has
//! `NOTIFY_SOCKET` in its environment and hands it to every shim. A shim that lets runc see it
//! hangs a detached start: runc then waits for the container to send READY=1. Both shims must
//! start the task and report it running.

mod common;

use std::ffi::OsString;
use std::os::unix::net::UnixDatagram;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{Bed, Shim};
use ctrd_testbed::Daemon;

/// How long a detached `ctr run` may take before the start counts as hung.
const START_LIMIT: Duration = Duration::from_secs(30);

fn detached_start_runs(daemon: Daemon, shim: Shim) {
    // The socket systemd would listen on for the daemon's own readiness.
    let systemd = tempfile::tempdir().expect("tempdir");
    let notify = systemd.path().join("notify");
    let _listener = UnixDatagram::bind(&notify).expect("bind the notify socket");

    let bed = Bed::with_env(
        daemon,
        shim,
        vec![(
            OsString::from("NOTIFY_SOCKET"),
            notify.clone().into_os_string(),
        )],
    );
    let id = "notify";
    let rootfs = bed.rootfs();
    let mut ctr = bed
        .ctr(&["run", "-d", "--rootfs", &rootfs, id, "/bin/sleep", "300"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ctr");
    let deadline = Instant::now() + START_LIMIT;
    let status = loop {
        if let Some(status) = ctr.try_wait().expect("wait for ctr") {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = ctr.kill();
            let _ = ctr.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let state = bed.task_status(id);
    let mut stderr = String::new();
    if let Some(mut pipe) = ctr.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut pipe, &mut stderr);
    }
    bed.remove(id);
    let status = status.unwrap_or_else(|| {
        panic!(
            "{shim:?} shim on containerd {}: a detached start with NOTIFY_SOCKET set hung for \
             {START_LIMIT:?} (task {state})",
            daemon.version()
        )
    });
    assert!(status.success(), "ctr run -d failed ({status}): {stderr}");
    assert_eq!(
        state,
        "RUNNING",
        "{shim:?} shim on containerd {}",
        daemon.version()
    );
}

#[test]
fn detached_start_with_notify_socket_runs() {
    for daemon in Daemon::selected() {
        for shim in [Shim::Ours, Shim::Go] {
            detached_start_runs(daemon, shim);
        }
    }
}
