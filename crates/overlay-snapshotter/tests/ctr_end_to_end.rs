//! End to end with `ctr` on containerd 1.6 and 2.1, our snapshotter as a proxy plugin:
//! `ctr snapshots` commands, and a multi-layer image imported onto our snapshotter and run
//! with our runc shim. Everything is removed afterwards and nothing stays on disk.

mod common;

use std::process::Output;

use common::PROXY_NAME;
use common::proxy::Proxied;
use ctrd_testbed::{Daemon, ImageArchive};

/// Each test's own namespace: runc's state and the test bed's cleanup are per namespace,
/// and the tests run in parallel.
fn namespace() -> String {
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("main");
    let short: String = test
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(24)
        .collect();
    format!("e2e-{short}")
}

fn ctr(proxied: &Proxied, args: &[&str]) -> Output {
    proxied.ctr(&namespace(), args)
}

fn ok(proxied: &Proxied, args: &[&str]) -> String {
    proxied.ctr_ok(&namespace(), args)
}

fn snapshots(proxied: &Proxied, args: &[&str]) -> String {
    let mut all = vec!["snapshots", "--snapshotter", PROXY_NAME];
    all.extend_from_slice(args);
    ok(proxied, &all)
}

/// Runs `steps` (ctr snapshots commands that end with snapshot `key`), then labels `key` a
/// garbage-collection root. ctr holds no lease, so containerd may collect `key` between its
/// creation and the label (a deletion just before schedules a collection); then the steps run
/// again, a few times at most.
fn kept(proxied: &Proxied, key: &str, steps: &[&[&str]]) {
    for _ in 0..5 {
        for step in steps {
            snapshots(proxied, step);
        }
        let mut all = vec!["snapshots", "--snapshotter", PROXY_NAME];
        all.extend_from_slice(&["label", key, "containerd.io/gc.root=1"]);
        let out = ctr(proxied, &all);
        if out.status.success() {
            return;
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("not found"), "labelling {key}: {stderr}");
    }
    panic!("{key} was collected before it could be labelled, five times");
}

#[test]
fn ctr_snapshots_commands() {
    for daemon in Daemon::selected() {
        let proxied = Proxied::start(daemon, &[]);
        // ctr's snapshots commands hold no lease past the command; the gc.root label keeps
        // the snapshots until `rm`.
        kept(
            &proxied,
            "e2e-base",
            &[
                &["prepare", "e2e-base-a"],
                &["commit", "e2e-base", "e2e-base-a"],
            ],
        );
        kept(&proxied, "e2e-view", &[&["view", "e2e-view", "e2e-base"]]);
        kept(
            &proxied,
            "e2e-child",
            &[&["prepare", "e2e-child", "e2e-base"]],
        );
        let mounts = snapshots(&proxied, &["mounts", "/mnt", "e2e-view"]);
        assert!(mounts.contains("mount -t "), "{mounts}");
        let mounts = snapshots(&proxied, &["mounts", "/mnt", "e2e-child"]);
        assert!(
            mounts.contains("mount -t overlay") && mounts.contains("lowerdir="),
            "{mounts}"
        );
        let ls = snapshots(&proxied, &["ls"]);
        for (key, kind) in [
            ("e2e-base", "Committed"),
            ("e2e-view", "View"),
            ("e2e-child", "Active"),
        ] {
            assert!(
                ls.lines().any(|l| l.starts_with(key) && l.contains(kind)),
                "{key} {kind} in\n{ls}"
            );
        }
        let info = snapshots(&proxied, &["info", "e2e-child"]);
        assert!(info.contains("\"Parent\": \"e2e-base\""), "{info}");
        let usage = snapshots(&proxied, &["usage", "e2e-base"]);
        assert!(usage.contains("e2e-base"), "{usage}");
        let refused = ctr(
            &proxied,
            &["snapshots", "--snapshotter", PROXY_NAME, "rm", "e2e-base"],
        );
        assert!(!refused.status.success(), "removing a parent must fail");
        snapshots(&proxied, &["rm", "e2e-child", "e2e-view"]);
        snapshots(&proxied, &["rm", "e2e-base"]);
        assert_eq!(
            snapshots(&proxied, &["ls"]).lines().count(),
            1,
            "only the header"
        );
        proxied.assert_nothing_on_disk();
    }
}

#[test]
fn layered_image_runs_on_our_snapshotter_with_our_shim() {
    let shim = ctrd_testbed::OurShim::build().unwrap_or_else(|e| panic!("{e}"));
    let change = |path: &str, content: Option<&str>| (path.to_owned(), content.map(str::to_owned));
    let image = ImageArchive::layered(
        "docker.io/library/ctrd-layered:latest",
        &[
            vec![change("/data/a", Some("a")), change("/data/b", Some("b"))],
            vec![change("/data/a", None), change("/data/c", Some("c"))],
            vec![change("/data/b", Some("b2")), change("/bin/vi", None)],
        ],
    )
    .expect("build the image");
    for daemon in Daemon::selected() {
        let proxied = Proxied::start(daemon, &[shim.path()]);
        let archive = image.path();
        let archive = archive.to_string_lossy();
        ok(
            &proxied,
            &["images", "import", "--snapshotter", PROXY_NAME, &archive],
        );
        let ls = snapshots(&proxied, &["ls"]);
        assert_eq!(ls.lines().count(), 1 + 4, "one snapshot per layer:\n{ls}");
        let out = ok(
            &proxied,
            &[
                "run",
                "--rm",
                "--snapshotter",
                PROXY_NAME,
                "--runtime",
                "io.containerd.runc.v2",
                image.name(),
                "ctrd-layered",
                "sh",
                "-c",
                "ls /data; cat /data/b; echo; test -e /bin/vi && echo vi || echo no-vi",
            ],
        );
        assert_eq!(
            out, "b\nc\nb2\nno-vi\n",
            "the container saw the layers merged"
        );
        ok(&proxied, &["images", "rm", "--sync", image.name()]);
        ok(&proxied, &["content", "prune", "references"]);
        assert_eq!(
            snapshots(&proxied, &["ls"]).lines().count(),
            1,
            "only the header"
        );
        proxied.assert_nothing_on_disk();
        assert!(
            !ctrd_testbed::runc_root(&namespace())
                .join("ctrd-layered")
                .exists()
        );
    }
}

#[test]
fn image_of_128_layers_runs_with_our_shim_on_both_snapshotters() {
    let shim = ctrd_testbed::OurShim::build().unwrap_or_else(|e| panic!("{e}"));
    let layers: Vec<Vec<(String, Option<String>)>> = (0..127)
        .map(|i| vec![(format!("/layers/{i}"), Some(format!("{i}\n")))])
        .collect();
    let image = ImageArchive::layered("docker.io/library/ctrd-deep:latest", &layers)
        .expect("build the image");
    for daemon in Daemon::selected() {
        let proxied = Proxied::start(daemon, &[shim.path()]);
        for snapshotter in [PROXY_NAME, "overlayfs"] {
            let archive = image.path();
            ok(
                &proxied,
                &[
                    "images",
                    "import",
                    "--snapshotter",
                    snapshotter,
                    &archive.to_string_lossy(),
                ],
            );
            let out = ok(
                &proxied,
                &[
                    "run",
                    "--rm",
                    "--snapshotter",
                    snapshotter,
                    "--runtime",
                    "io.containerd.runc.v2",
                    image.name(),
                    "ctrd-deep",
                    "sh",
                    "-c",
                    "ls /layers | wc -l; cat /layers/0 /layers/126",
                ],
            );
            assert_eq!(
                out.split_whitespace().collect::<Vec<_>>(),
                ["127", "0", "126"],
                "{snapshotter}: all 128 layers mounted"
            );
            ok(&proxied, &["images", "rm", "--sync", image.name()]);
        }
        ok(&proxied, &["content", "prune", "references"]);
        proxied.assert_nothing_on_disk();
    }
}
