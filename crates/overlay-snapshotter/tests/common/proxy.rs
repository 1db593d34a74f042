//! Our snapshotter binary as containerd's proxy plugin.

use std::path::Path;

use ctrd_snapshots::conformance::Target;
use ctrd_testbed::{Containerd, Daemon, ProxyPlugin, SnapshotterProcess};

use super::{PROXY_NAME, layer_count};

/// The snapshotter binary Cargo built for these tests.
pub fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_ctrd-overlay-snapshotter"))
}

/// Our snapshotter process and a containerd using it as `PROXY_NAME`. Fields drop in order:
/// containerd stops before the snapshotter.
pub struct Proxied {
    pub containerd: Containerd,
    pub snapshotter: SnapshotterProcess,
}

impl Proxied {
    /// Starts both, with `extra_path` first on containerd's `PATH` (for shims).
    pub fn start(daemon: Daemon, extra_path: &[&Path]) -> Proxied {
        let snapshotter = SnapshotterProcess::start(binary(), &[])
            .unwrap_or_else(|e| panic!("starting our snapshotter: {e}"));
        Proxied::with(daemon, extra_path, snapshotter)
    }

    /// Starts both, the snapshotter's `--root` at `root` (on a small filesystem, say).
    pub fn start_on(daemon: Daemon, extra_path: &[&Path], root: &Path) -> Proxied {
        let snapshotter = SnapshotterProcess::start_on(binary(), root, &[])
            .unwrap_or_else(|e| panic!("starting our snapshotter: {e}"));
        Proxied::with(daemon, extra_path, snapshotter)
    }

    /// Starts both, the plugin declaring `rebase` (containerd 2.x then unpacks layers onto
    /// it in parallel), with `extra_path` first on containerd's `PATH`.
    pub fn start_rebasing(daemon: Daemon, extra_path: &[&Path]) -> Proxied {
        let snapshotter = SnapshotterProcess::start(binary(), &[])
            .unwrap_or_else(|e| panic!("starting our snapshotter: {e}"));
        let plugin = ProxyPlugin::snapshot(PROXY_NAME, &snapshotter.address()).rebase();
        Proxied::with_plugin(daemon, extra_path, snapshotter, plugin)
    }

    fn with(daemon: Daemon, extra_path: &[&Path], snapshotter: SnapshotterProcess) -> Proxied {
        let plugin = ProxyPlugin::snapshot(PROXY_NAME, &snapshotter.address());
        Proxied::with_plugin(daemon, extra_path, snapshotter, plugin)
    }

    fn with_plugin(
        daemon: Daemon,
        extra_path: &[&Path],
        snapshotter: SnapshotterProcess,
        plugin: ProxyPlugin,
    ) -> Proxied {
        let containerd = Containerd::start_with_proxies(daemon, extra_path, &[plugin])
            .unwrap_or_else(|e| panic!("starting containerd {}: {e}", daemon.version()));
        Proxied {
            containerd,
            snapshotter,
        }
    }

    /// Runs `ctr` on our containerd in `namespace`.
    pub fn ctr(&self, namespace: &str, args: &[&str]) -> std::process::Output {
        self.containerd
            .ctr()
            .expect("ctr")
            .args(["--namespace", namespace])
            .args(args)
            .output()
            .expect("run ctr")
    }

    /// As [`ctr`](Self::ctr), failing the test with ctr's output unless it succeeds; its
    /// standard output. The time it took goes to the test's log.
    pub fn ctr_ok(&self, namespace: &str, args: &[&str]) -> String {
        let started = std::time::Instant::now();
        let out = self.ctr(namespace, args);
        eprintln!("ctr {args:?}: {:?}", started.elapsed());
        assert!(
            out.status.success(),
            "ctr {args:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A conformance target through containerd, in `namespace`.
    pub async fn target(&self, namespace: &str) -> Target {
        Target::through_containerd(&self.containerd.grpc_address(), PROXY_NAME, namespace)
            .await
            .unwrap_or_else(|e| panic!("{}", e.full_message()))
            .with_folders(self.snapshotter.root().join("snapshots"))
            .with_layers(layer_count())
    }

    /// Runs a garbage collection now, then waits until every snapshot folder of our
    /// snapshotter is gone, and fails naming what is left after 90 s. (containerd spaces its
    /// own collections out; under load one scheduled by a removal was seen not to come within
    /// 90 s.)
    pub fn assert_nothing_on_disk(&self) {
        self.containerd
            .collect_garbage()
            .unwrap_or_else(|e| panic!("{e}"));
        let folder = self.snapshotter.root().join("snapshots");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
        loop {
            let left: Vec<String> = std::fs::read_dir(&folder)
                .map(|d| {
                    d.filter_map(Result::ok)
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .collect()
                })
                .unwrap_or_default();
            if left.is_empty() {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "left in {}: {left:?}",
                folder.display()
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}
