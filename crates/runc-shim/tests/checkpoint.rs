//! Checkpoint through containerd, on our shim and on Debian's Go shim.
//!
//! A checkpoint that runc refuses reports runc's own reason, on every machine. A checkpoint
//! that succeeds needs a working CRIU, which not every kernel allows (`criu check`), so those
//! tests are ignored by default: run them with `--ignored` where `criu check` passes;
//! elsewhere they fail naming why.

mod common;

use common::{Bed, Shim};
use ctrd_testbed::Daemon;

/// Why CRIU cannot checkpoint here, if it cannot.
fn criu_unusable() -> Option<String> {
    match std::process::Command::new("criu").arg("check").output() {
        Err(e) => Some(format!(
            "criu is not installed ({e}); scripts/setup-testbed.sh installs it"
        )),
        Ok(out) if !out.status.success() => Some(format!(
            "`criu check` fails: {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
        )),
        Ok(_) => None,
    }
}

fn checkpoint_writes_images(daemon: Daemon, shim: Shim) {
    if let Some(reason) = criu_unusable() {
        panic!("this test needs a working CRIU: {reason}");
    }
    let bed = Bed::new(daemon, shim);
    let rootfs = bed.rootfs();
    bed.ok(&["run", "-d", "--rootfs", &rootfs, "cp", "/bin/sleep", "300"]);
    let images = tempfile::tempdir().expect("tempdir");
    let image_path = format!("--image-path={}", images.path().display());
    let out = bed.run(&["tasks", "checkpoint", &image_path, "cp"]);
    assert!(out.status.success(), "{out:?}");
    let written = std::fs::read_dir(images.path())
        .map(|d| d.count())
        .unwrap_or(0);
    assert!(written > 0, "CRIU wrote its images");
    bed.remove("cp");
}

/// The image folder cannot be made (its parent is a file): runc refuses before CRIU runs,
/// and containerd's error carries runc's reason.
fn refused_checkpoint_reports_runc_error(daemon: Daemon, shim: Shim) {
    let bed = Bed::new(daemon, shim);
    let rootfs = bed.rootfs();
    bed.ok(&[
        "run",
        "-d",
        "--rootfs",
        &rootfs,
        "cpfail",
        "/bin/sleep",
        "300",
    ]);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("a-file");
    std::fs::write(&file, "").expect("file");
    let images = file.join("images");
    let image_path = format!("--image-path={}", images.display());
    let out = bed.run(&["tasks", "checkpoint", &image_path, "cpfail"]);
    let reason = format!("mkdir {}: not a directory", file.display());
    let error = match shim {
        Shim::Ours => format!("`runc checkpoint cpfail` failed (exit status: 1): {reason}"),
        // The Go shim adds the CRIU log it would have written.
        Shim::Go => format!(
            "runc did not terminate successfully: exit status 1: {reason} path= {}",
            bed.containerd()
                .dir()
                .join("state/io.containerd.runtime.v2.task")
                .join(&bed.ns)
                .join("cpfail/criu-dump.log")
                .display()
        ),
    };
    // containerd 1.6 appends the gRPC code.
    let code = if daemon.is_v2() { "" } else { ": unknown" };
    assert!(!out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!("ctr: {error}{code}\n")
    );
    bed.remove("cpfail");
}

#[test]
fn refused_checkpoint_on_ours_on_containerd_1_6() {
    refused_checkpoint_reports_runc_error(Daemon::Bookworm, Shim::Ours);
}

#[test]
fn refused_checkpoint_on_go_shim_on_containerd_1_6() {
    refused_checkpoint_reports_runc_error(Daemon::Bookworm, Shim::Go);
}

#[test]
#[ignore = "needs CRIU: run with --ignored where `criu check` passes"]
fn checkpoint_on_ours_on_containerd_1_6() {
    checkpoint_writes_images(Daemon::Bookworm, Shim::Ours);
}

#[test]
#[ignore = "needs CRIU: run with --ignored where `criu check` passes"]
fn checkpoint_on_go_shim_on_containerd_1_6() {
    checkpoint_writes_images(Daemon::Bookworm, Shim::Go);
}
