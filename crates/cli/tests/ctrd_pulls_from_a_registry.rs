//! `ctrd images pull` from a real registry on 127.0.0.1 (Debian's docker-registry, the image
//! pushed with skopeo), then `run`; a missing image is one error line. On 1.6 and 2.1.

use std::process::{Command, Stdio};

use ctrd_testbed::{Containerd, Daemon, ImageArchive, OurShim, Registry};

#[test]
fn ctrd_pulls_from_a_registry() {
    let shim = OurShim::build().unwrap_or_else(|e| panic!("{e}"));
    let registry = Registry::start().unwrap_or_else(|e| panic!("{e}"));
    let archive = ImageArchive::busybox("docker.io/library/ctrd-cli-pull:latest").expect("archive");
    let reference = registry
        .push(&archive.path(), "ctrd/cli-busybox", "v1")
        .unwrap_or_else(|e| panic!("{e}"));
    for daemon in Daemon::selected() {
        let containerd =
            Containerd::start_with_path(daemon, &[shim.path()]).unwrap_or_else(|e| panic!("{e}"));
        let ctrd = |args: &[&str]| {
            Command::new(env!("CARGO_BIN_EXE_ctrd"))
                .arg("--address")
                .arg(containerd.grpc_address())
                .args(["--namespace", "cli-pull"])
                .args(args)
                .stdin(Stdio::null())
                .output()
                .expect("ctrd")
        };
        let out = ctrd(&["images", "pull", &reference]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).starts_with(&reference));
        let out = ctrd(&[
            "run",
            "--rm",
            &reference,
            "pulled",
            "sh",
            "-c",
            "echo pulled",
        ]);
        assert_eq!(String::from_utf8_lossy(&out.stdout), "pulled\n", "{out:?}");
        let missing = format!("{}/ctrd/nope:v1", registry.host());
        let out = ctrd(&["images", "pull", &missing]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1));
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            // 404 from our own fetch (1.6), "not found" from containerd's transfer service.
            (stderr.contains("404") || stderr.contains("not found"))
                && stderr.contains("ctrd/nope"),
            "{stderr}"
        );
        let out = ctrd(&["images", "rm", &reference]);
        assert!(out.status.success());
        let out = ctrd(&["--json", "images", "ls"]);
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "[]");
    }
}
