//! Checkpoint through containerd, on our shim and on Debian's Go shim. Where CRIU cannot run on
//! this machine, the test says so in its output and checks that both shims report CRIU's
//! failure as the checkpoint's error.

mod common;

use std::io::Write;

use common::{Bed, Shim};
use ctrd_testbed::Daemon;

/// `Some(reason)` when CRIU cannot checkpoint here.
fn criu_unusable() -> Option<String> {
    match std::process::Command::new("criu").arg("check").output() {
        Err(e) => Some(format!("criu is not installed ({e})")),
        Ok(out) if !out.status.success() => Some(
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("criu check failed")
                .to_owned(),
        ),
        Ok(_) => None,
    }
}

fn checkpoint(daemon: Daemon, shim: Shim) {
    let bed = Bed::new(daemon, shim);
    let rootfs = bed.rootfs();
    bed.ok(&["run", "-d", "--rootfs", &rootfs, "cp", "/bin/sleep", "300"]);
    let images = tempfile::tempdir().expect("tempdir");
    let image_path = format!("--image-path={}", images.path().display());
    let out = bed.run(&["tasks", "checkpoint", &image_path, "cp"]);
    match criu_unusable() {
        Some(reason) => {
            let _ = writeln!(
                std::io::stderr(),
                "\nCHECKPOINT WITH CRIU NOT RUN ({shim:?} shim): {reason}"
            );
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                !out.status.success(),
                "checkpoint cannot succeed without CRIU"
            );
            assert!(
                stderr.contains("criu") || stderr.contains("checkpoint"),
                "the error names the checkpoint's failure: {stderr}"
            );
        }
        None => {
            assert!(out.status.success(), "{out:?}");
            let written = std::fs::read_dir(images.path())
                .map(|d| d.count())
                .unwrap_or(0);
            assert!(written > 0, "CRIU wrote its images");
        }
    }
    bed.remove("cp");
}

#[test]
fn ours_on_containerd_1_6() {
    checkpoint(Daemon::Bookworm, Shim::Ours);
}

#[test]
fn go_shim_on_containerd_1_6() {
    checkpoint(Daemon::Bookworm, Shim::Go);
}
