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

    fn with(daemon: Daemon, extra_path: &[&Path], snapshotter: SnapshotterProcess) -> Proxied {
        let containerd = Containerd::start_with_proxies(
            daemon,
            extra_path,
            &[ProxyPlugin::snapshot(PROXY_NAME, &snapshotter.address())],
        )
        .unwrap_or_else(|e| panic!("starting containerd {}: {e}", daemon.version()));
        Proxied {
            containerd,
            snapshotter,
        }
    }

    /// A conformance target through containerd, in `namespace`.
    pub async fn target(&self, namespace: &str) -> Target {
        Target::through_containerd(&self.containerd.grpc_address(), PROXY_NAME, namespace)
            .await
            .unwrap_or_else(|e| panic!("{}", e.full_message()))
            .with_folders(self.snapshotter.root().join("snapshots"))
            .with_layers(layer_count())
    }
}
