//! `ctrd` as scripts use it, on containerd 1.6 and 2.1 with our runc shim: import, list,
//! run with its exit status, exec with and without a terminal, events, kill, remove; `--json`
//! parsed; bad input gives one error line and leaves nothing behind.

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use ctrd_testbed::{Containerd, Daemon, ImageArchive, OurShim};
use serde_json::Value;

const IMAGE: &str = "docker.io/library/ctrd-cli-busybox:latest";

struct Ctrd<'a> {
    containerd: &'a Containerd,
    namespace: String,
}

impl Ctrd<'_> {
    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_ctrd"));
        c.arg("--address")
            .arg(self.containerd.grpc_address())
            .args(["--namespace", &self.namespace])
            .args(args)
            .stdin(Stdio::null());
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run ctrd")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "ctrd {args:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let text = self.ok(&all);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("ctrd {args:?}: {e}: {text}"))
    }

    /// Runs a failing command: one line on stderr, containing `needle`; exit status 1.
    fn fails(&self, args: &[&str], needle: &str) {
        let out = self.run(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "ctrd {args:?}: {stderr}");
        assert_eq!(
            stderr.lines().count(),
            1,
            "ctrd {args:?}: one line, got {stderr:?}"
        );
        assert!(
            stderr.starts_with("ctrd: ") && stderr.contains(needle),
            "ctrd {args:?}: {stderr:?} lacks {needle:?}"
        );
    }
}

fn scenario(daemon: Daemon, shim: &OurShim, archive: &ImageArchive) {
    eprintln!("containerd {}: ctrd as scripts use it", daemon.version());
    let containerd =
        Containerd::start_with_path(daemon, &[shim.path()]).unwrap_or_else(|e| panic!("{e}"));
    let ctrd = Ctrd {
        containerd: &containerd,
        namespace: format!("cli-{}", daemon.version().replace('.', "-")),
    };

    let version = ctrd.json(&["version"]);
    assert!(
        version["server"]["version"]
            .as_str()
            .is_some_and(|v| v.starts_with(daemon.version())),
        "{version}"
    );

    // Bad input before anything exists.
    let dead = tempfile::Builder::new().tempdir().expect("tempdir");
    let socket = dead.path().join("dead.sock");
    drop(std::os::unix::net::UnixListener::bind(&socket).expect("bind"));
    let mut c = Command::new(env!("CARGO_BIN_EXE_ctrd"));
    let out = c
        .arg("--address")
        .arg(&socket)
        .arg("ps")
        .output()
        .expect("ctrd");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains("connecting to containerd") && stderr.contains("refused"),
        "{stderr}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_ctrd"))
        .args(["--address", "/nonexistent/c.sock", "ps"])
        .output()
        .expect("ctrd");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("No such file"),
        "{out:?}"
    );
    ctrd.fails(&["ps"], "does not exist");
    let corrupt = dead.path().join("corrupt.tar");
    std::fs::write(&corrupt, b"this is not a tar archive at all").expect("write");
    ctrd.fails(
        &["images", "import", &corrupt.display().to_string()],
        "image archive",
    );

    // Through containerd's transfer service, on the daemons that have it.
    let path = archive.path().display().to_string();
    if daemon.is_v2() {
        let imported = ctrd.json(&["images", "import", "--transfer", &path]);
        assert_eq!(imported[0]["name"], IMAGE, "{imported}");
        ctrd.ok(&["images", "rm", IMAGE]);
    } else {
        ctrd.fails(
            &["images", "import", "--transfer", &path],
            "no transfer service",
        );
    }

    // Import, list, tag.
    let said = ctrd.ok(&["images", "import", &archive.path().display().to_string()]);
    assert!(said.starts_with(IMAGE), "{said}");
    let images = ctrd.json(&["images", "ls"]);
    assert_eq!(images[0]["name"], IMAGE, "{images}");
    ctrd.ok(&[
        "images",
        "tag",
        IMAGE,
        "docker.io/library/ctrd-cli-busybox:two",
    ]);
    assert_eq!(ctrd.ok(&["images", "ls", "-q"]).lines().count(), 2);
    let table = ctrd.ok(&["images", "ls"]);
    assert!(table.starts_with("REF") && table.contains("MiB"), "{table}");

    // Events, watched from the start.
    let mut events = ctrd
        .command(&["--json", "events"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("ctrd events");
    std::thread::sleep(Duration::from_millis(300));

    // run: output and the container's own exit status.
    let out = ctrd.run(&[
        "run",
        "--rm",
        IMAGE,
        "once",
        "sh",
        "-c",
        "echo hi; echo oops >&2; exit 5",
    ]);
    assert_eq!(out.status.code(), Some(5), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hi\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "oops\n");
    ctrd.fails(
        &[
            "run",
            "--rm",
            "docker.io/library/nope:latest",
            "nope",
            "true",
        ],
        "nope",
    );
    ctrd.fails(
        &[
            "run",
            "--rm",
            "--mount",
            "src=/tmp",
            IMAGE,
            "bad-mount",
            "true",
        ],
        "dst=",
    );

    // A detached container, exec into it, kill, remove.
    ctrd.ok(&[
        "run", "-d", "--env", "WHO=ctrd", IMAGE, "long", "sleep", "300",
    ]);
    let ps = ctrd.json(&["ps"]);
    assert_eq!(ps[0]["id"], "long");
    assert_eq!(ps[0]["status"], "RUNNING", "{ps}");
    let out = ctrd.run(&["exec", "long", "sh", "-c", "echo $WHO; exit 4"]);
    assert_eq!(out.status.code(), Some(4));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ctrd\n");
    let tty = ctrd.ok(&["exec", "-t", "long", "tty"]);
    assert!(tty.contains("/dev/pts/"), "{tty:?}");
    ctrd.fails(&["exec", "ghost", "true"], "ghost");
    ctrd.fails(&["rm", "long"], "kill it first");
    ctrd.ok(&["kill", "-s", "KILL", "long"]);
    ctrd.fails(&["kill", "-s", "NOPE", "long"], "unknown signal");
    ctrd.ok(&["rm", "-f", "long"]);
    assert_eq!(ctrd.json(&["ps"]), Value::Array(vec![]));

    // ctr runs what ctrd imported and unpacked (same chain ids, same labels).
    let ctr = containerd
        .ctr()
        .expect("ctr")
        .args([
            "--namespace",
            &ctrd.namespace,
            "run",
            "--rm",
            IMAGE,
            "by-ctr",
            "sh",
            "-c",
            "echo from-ctr",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("ctr run");
    assert!(
        ctr.status.success(),
        "ctr run: {}",
        String::from_utf8_lossy(&ctr.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&ctr.stdout), "from-ctr\n");

    // Snapshots: the image's layer, committed.
    let snapshots = ctrd.json(&["snapshots", "ls"]);
    assert_eq!(snapshots[0]["kind"], "Committed", "{snapshots}");
    let usage = ctrd.json(&["snapshots", "usage"]);
    assert!(
        usage[0]["size"].as_i64().is_some_and(|s| s > 1_000_000),
        "{usage}"
    );

    // The events seen.
    let _ = events.kill();
    let _ = events.wait();
    let lines: Vec<Value> = BufReader::new(events.stdout.take().expect("stdout"))
        .lines()
        .map_while(Result::ok)
        .filter_map(|l| serde_json::from_str(&l).ok())
        .collect();
    let topics: Vec<&str> = lines.iter().filter_map(|l| l["topic"].as_str()).collect();
    for topic in [
        "/tasks/start",
        "/tasks/exit",
        "/tasks/exec-added",
        "/containers/delete",
    ] {
        assert!(topics.contains(&topic), "no {topic} in {topics:?}");
    }

    // Remove the images: nothing is left.
    ctrd.ok(&[
        "images",
        "rm",
        IMAGE,
        "docker.io/library/ctrd-cli-busybox:two",
    ]);
    assert_eq!(ctrd.json(&["images", "ls"]), Value::Array(vec![]));
    assert_eq!(ctrd.json(&["snapshots", "ls"]), Value::Array(vec![]));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let client = ctrd_client::Client::connect(containerd.grpc_address())
            .await
            .expect("connect")
            .with_namespace(&ctrd.namespace);
        assert_eq!(client.list_content(&[]).await.expect("content"), vec![]);
        assert_eq!(
            client.list_leases().await.expect("leases"),
            Vec::<String>::new()
        );
        assert_eq!(
            client.list_ingests().await.expect("ingests"),
            Vec::<String>::new()
        );
    });
}

#[test]
fn ctrd_as_scripts_use_it() {
    let shim = OurShim::build().unwrap_or_else(|e| panic!("{e}"));
    let archive = ImageArchive::busybox(IMAGE).expect("image archive");
    for daemon in Daemon::selected() {
        scenario(daemon, &shim, &archive);
    }
}

#[test]
fn completions_name_the_subcommands() {
    let out = Command::new(env!("CARGO_BIN_EXE_ctrd"))
        .args(["completions", "bash"])
        .output()
        .expect("ctrd");
    let script = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    for word in ["images", "run", "exec", "snapshots", "--namespace"] {
        assert!(script.contains(word), "bash completion lacks {word}");
    }
}
