//! `ctrd run --log-uri binary://…/ctrd-log-driver?sink=json-file&path=…`, as the README shows
//! it: the container's stdout and stderr land in the json-file, one record a line, on every
//! daemon, with our runc shim; `ctrd logs [-f]` reads a detached container's CRI file back.

use std::process::Command;

use ctrd_testbed::{Containerd, Daemon, ImageArchive, OurShim};
use serde_json::Value;

const IMAGE: &str = "docker.io/library/ctrd-cli-logged:latest";

fn ctrd(containerd: &Containerd, namespace: &str, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_ctrd"))
        .arg("--address")
        .arg(containerd.grpc_address())
        .args(["--namespace", namespace])
        .args(args)
        .output()
        .expect("run ctrd");
    assert!(
        out.status.success(),
        "ctrd {args:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn output_reaches_the_json_file() {
    let shim = OurShim::build().unwrap_or_else(|e| panic!("{e}"));
    let driver = ctrd_testbed::workspace_bin("ctrd-logging", "ctrd-log-driver")
        .unwrap_or_else(|e| panic!("{e}"));
    let archive = ImageArchive::busybox(IMAGE).expect("image archive");
    for daemon in Daemon::selected() {
        let containerd =
            Containerd::start_with_path(daemon, &[shim.path()]).unwrap_or_else(|e| panic!("{e}"));
        let namespace = format!("cli-log-{}", daemon.version().replace('.', "-"));
        let logs = tempfile::tempdir().expect("log folder");
        let file = logs.path().join("c.log");
        let uri = format!(
            "binary://{}?sink=json-file&path={}",
            driver.display(),
            file.display()
        );
        ctrd(
            &containerd,
            &namespace,
            &["images", "import", &archive.path().display().to_string()],
        );
        ctrd(
            &containerd,
            &namespace,
            &[
                "run",
                "--rm",
                "--log-uri",
                &uri,
                IMAGE,
                "logged",
                "sh",
                "-c",
                "echo to-out; echo to-err >&2",
            ],
        );
        let text = std::fs::read_to_string(&file).expect("the json-file");
        let mut records: Vec<(String, String)> = text
            .lines()
            .map(|line| {
                let record: Value = serde_json::from_str(line).expect("a JSON record");
                (
                    record["stream"].as_str().unwrap_or_default().to_owned(),
                    record["log"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        // The two streams are ordered within themselves, not against each other.
        records.sort();
        assert_eq!(
            records,
            [
                ("stderr".to_owned(), "to-err\n".to_owned()),
                ("stdout".to_owned(), "to-out\n".to_owned())
            ],
            "containerd {}: {text}",
            daemon.version()
        );

        // A detached container writing CRI records: `ctrd logs -f` follows it until it
        // exits, `ctrd logs` reads the same back; stderr records go to stderr.
        let cri = logs.path().join("d.log");
        let uri = format!(
            "binary://{}?sink=cri&path={}",
            driver.display(),
            cri.display()
        );
        ctrd(
            &containerd,
            &namespace,
            &[
                "run",
                "-d",
                "--log-uri",
                &uri,
                IMAGE,
                "detached",
                "sh",
                "-c",
                "echo one; echo two >&2; sleep 1; echo three",
            ],
        );
        for args in [&["logs", "-f", "detached"][..], &["logs", "detached"][..]] {
            let out = Command::new(env!("CARGO_BIN_EXE_ctrd"))
                .arg("--address")
                .arg(containerd.grpc_address())
                .args(["--namespace", &namespace])
                .args(args)
                .output()
                .expect("run ctrd logs");
            assert!(out.status.success(), "{out:?}");
            assert_eq!(
                String::from_utf8_lossy(&out.stdout),
                "one\nthree\n",
                "{args:?}"
            );
            assert_eq!(String::from_utf8_lossy(&out.stderr), "two\n", "{args:?}");
        }
        ctrd(&containerd, &namespace, &["rm", "detached"]);
        ctrd(&containerd, &namespace, &["images", "rm", IMAGE]);
    }
}
