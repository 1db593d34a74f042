//! Drivers that cannot start, exit early or hang: `ctr run` fails with a clear error, does not
//! hang, and leaves no driver or container process behind; and `binary-v2://` through our
//! shim.

mod common;

use std::path::Path;
use std::time::Duration;

use std::process::Output;

use common::{Bed, Shim, driver, drivers_of, read_back, wait_gone};
use ctrd_logging::reader::Format;
use ctrd_testbed::{Daemon, cleanup};

fn write_script(dir: &Path, name: &str, body: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("script");
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    path.display().to_string()
}

fn failing_drivers(daemon: Daemon, shim: Shim) {
    let bed = Bed::new(daemon, shim);
    let dir = tempfile::Builder::new()
        .prefix("ctrd-baddrivers-")
        .tempdir_in("/tmp")
        .expect("tempdir");
    let d = dir.path().display().to_string();
    let limit = Duration::from_secs(40);
    let failed = |id: &str, out: &Output| -> String {
        let said = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!out.status.success(), "{id}: ctr run succeeded: {said}");
        bed.forget(id);
        wait_gone(&d, Duration::from_secs(15));
        said
    };

    // A driver binary that does not exist.
    let out = bed.run_logged(
        "missing",
        &format!("binary://{d}/no-such-driver"),
        "echo hi",
        limit,
    );
    let said = failed("missing", &out);
    assert!(
        said.contains("no-such-driver") && said.to_lowercase().contains("no such file"),
        "{said}"
    );

    // Our driver with a bad option exits at once with status 1. Under binary:// the Go shim
    // takes the closed fd 5 for ready and the container dies writing into a pipe nobody
    // reads; ours sees that the driver has already failed, and says why.
    let uri = format!(
        "binary://{}?path={d}/x.log&max-size=ten",
        driver().display()
    );
    let out = bed.run_logged("early", &uri, "echo hi; echo there >&2", limit);
    let said = failed("early", &out);
    if shim == Shim::Ours {
        assert!(
            said.contains("exited before it was ready (exit status: 1)")
                && said.contains("option max-size=\"ten\" is invalid"),
            "{said}"
        );
    }

    // A driver that never answers on fd 5. The Go shims of containerd 1.6 and 2.1 wait for it
    // forever (ctr run hangs), so only ours is tried: it gives up after 10 s and kills it.
    if shim == Shim::Ours {
        let hang = write_script(dir.path(), "hang", "sleep 300");
        let out = bed.run_logged(
            "hang",
            &format!("binary://{hang}?tag={d}"),
            "echo hi",
            limit,
        );
        let said = failed("hang", &out);
        assert!(said.contains("did not get ready within 10 s"), "{said}");
        // The script's own child (the sleep) went with it.
        let left = drivers_of(&bed.ns);
        cleanup::kill_all(&left);
        assert!(left.is_empty(), "driver processes left: {left:?}");
    }
}

/// `binary-v2://`: our driver's ready byte starts the container; a driver that fails before
/// writing it, or closes fd 5 without it, fails the start (with our shim, with its reason).
fn binary_v2(daemon: Daemon, shim: Shim) {
    let bed = Bed::new(daemon, shim);
    let dir = tempfile::Builder::new()
        .prefix("ctrd-v2drivers-")
        .tempdir_in("/tmp")
        .expect("tempdir");
    let d = dir.path().display().to_string();
    let limit = Duration::from_secs(40);

    let log = dir.path().join("ok.log");
    let uri = format!(
        "binary-v2://{}?sink=cri&path={}",
        driver().display(),
        log.display()
    );
    let out = bed.run_logged("v2ok", &uri, "echo out; echo err >&2; printf end", limit);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_gone(&d, Duration::from_secs(15));
    assert_eq!(
        read_back(&log, Format::Cri),
        (b"out\nend".to_vec(), b"err\n".to_vec())
    );

    let uri = format!(
        "binary-v2://{}?path={d}/x.log&colour=red",
        driver().display()
    );
    let out = bed.run_logged("v2bad", &uri, "echo hi", limit);
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{said}");
    let clear =
        match shim {
            Shim::Ours => said.contains(
                "closed fd 5 without writing the ready byte binary-v2:// needs (exit status: 1)",
            ) && said.contains("unknown option \"colour\""),
            Shim::Go => said.contains("logging binary did not call ready"),
        };
    assert!(clear, "{said}");
    bed.forget("v2bad");

    let uri = format!(
        "binary-v2://{}?path={d}/y.log&ready=close",
        driver().display()
    );
    let out = bed.run_logged("v2close", &uri, "echo hi", limit);
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains("without writing the ready byte") || said.contains("did not call ready"),
        "{said}"
    );
    bed.forget("v2close");
    wait_gone(&d, Duration::from_secs(15));
}

#[test]
fn binary_v2_on_containerd_1_6() {
    binary_v2(Daemon::Bookworm, Shim::Ours);
}

#[test]
fn binary_v2_on_containerd_2_1() {
    binary_v2(Daemon::Sid, Shim::Ours);
}

/// The Go shim learnt `binary-v2://` in containerd 2.2; the test bed's 2.1 does not have it.
/// Run against the 2.4 the test bed builds: `CTRD_CONTAINERD_2_1_BIN=$PWD/.testbed/containerd-2.4/usr/bin
/// cargo test -p ctrd-logging --test failing_drivers -- --ignored`.
#[test]
#[ignore = "needs containerd >= 2.2 in place of 2.1 (CTRD_CONTAINERD_2_1_BIN), then --ignored"]
fn binary_v2_go_shim_on_containerd_2_2_or_later() {
    binary_v2(Daemon::Sid, Shim::Go);
}

#[test]
fn ours_on_containerd_1_6() {
    failing_drivers(Daemon::Bookworm, Shim::Ours);
}

#[test]
fn ours_on_containerd_2_1() {
    failing_drivers(Daemon::Sid, Shim::Ours);
}

#[test]
fn go_shim_on_containerd_1_6() {
    failing_drivers(Daemon::Bookworm, Shim::Go);
}

#[test]
fn go_shim_on_containerd_2_1() {
    failing_drivers(Daemon::Sid, Shim::Go);
}
