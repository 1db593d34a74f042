//! After containers ran with our shim (stdio through FIFOs, a `file://` log, an exec), nothing
//! any user may write was left in what containerd, the shim and runc keep: the daemon's
//! private root, state and socket folders, the bundle, runc's state, the shim's socket and the
//! log file. The shim's socket is 0600 and keeps `nobody` out. On every selected daemon.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::{Bed, Shim};
use ctrd_testbed::Daemon;
use ctrd_testbed::access::{Access, NOBODY, connect_as, world_writable};

fn scan_after_a_run(daemon: Daemon) {
    let mut bed = Bed::new(daemon, Shim::Ours);
    bed.ns = format!("wscan-{}", daemon.version().replace('.', "-"));
    let rootfs = bed.rootfs();
    let logs = tempfile::tempdir().expect("tempdir");
    let log = logs.path().join("web.log");
    let log_uri = format!("--log-uri=file://{}", log.display());
    let id = "wscan";

    // A run to completion through ctr's FIFOs, then one left running with a file:// log and
    // an exec into it.
    let said = bed.ok(&[
        "run",
        "--rm",
        "--rootfs",
        &rootfs,
        "once",
        "/bin/echo",
        "hi",
    ]);
    assert_eq!(said.trim(), "hi");
    bed.ok(&[
        "run",
        "-d",
        &log_uri,
        "--rootfs",
        &rootfs,
        id,
        "/bin/sleep",
        "300",
    ]);
    let said = bed.ok(&["tasks", "exec", "--exec-id", "e1", id, "/bin/echo", "exec"]);
    assert_eq!(said.trim(), "exec");

    let containerd = bed.containerd();
    let state = containerd.dir().join("state");
    let bundle = state
        .join("io.containerd.runtime.v2.task")
        .join(&bed.ns)
        .join(id);
    assert!(bundle.is_dir(), "bundle at {}", bundle.display());
    let address = std::fs::read_to_string(bundle.join("address")).expect("address file");
    let socket = PathBuf::from(address.trim().trim_start_matches("unix://"));
    let runc_root = ctrd_testbed::runc_root(&bed.ns);
    let private_socket_dir = containerd.socket_dir();
    let mut roots: Vec<&Path> = vec![containerd.dir(), &runc_root, &socket, &log];
    if private_socket_dir.starts_with(containerd.dir()) {
        roots.push(&private_socket_dir);
    }
    // The container's own filesystem (its /tmp is 1777 by design) is not ours to judge.
    let prune = |p: &Path| p.file_name().is_some_and(|n| n == "rootfs");
    let open = world_writable(&roots, &prune);
    let socket_mode = std::fs::metadata(&socket)
        .map(|m| m.permissions().mode() & 0o777)
        .unwrap_or(0);
    let log_mode = std::fs::metadata(&log)
        .map(|m| m.permissions().mode() & 0o777)
        .unwrap_or(0);
    let nobody = connect_as(&socket, NOBODY, NOBODY);
    bed.remove(id);

    assert!(
        open.is_empty(),
        "containerd {}: world-writable after a run: {open:?}",
        daemon.version()
    );
    assert_eq!(socket_mode, 0o600, "the shim's socket {}", socket.display());
    assert_eq!(log_mode & 0o002, 0, "the file:// log is not world-writable");
    assert_eq!(nobody.expect("connect as nobody"), Access::Denied);
}

#[test]
fn nothing_world_writable_after_a_run_with_our_shim() {
    ctrd_testbed::require_root().unwrap_or_else(|e| panic!("{e}"));
    for daemon in Daemon::selected() {
        scan_after_a_run(daemon);
    }
}
