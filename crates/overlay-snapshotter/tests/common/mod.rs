//! What the overlay snapshotter's tests share: our snapshotter served in-process or as
//! containerd's proxy plugin, as a conformance target (`ctrd_snapshots::conformance`).

#![allow(dead_code)]

pub mod proxy;

use std::sync::Arc;

use ctrd_api::containerd::services::snapshots::v1 as api;
use ctrd_client::Transport;
use ctrd_overlay_snapshotter::{Options, OverlaySnapshotter};
use ctrd_snapshots::Listener;
use ctrd_snapshots::conformance::Target;
use tokio::sync::oneshot;

/// The snapshots client type.
pub type Snapshots = api::snapshots_client::SnapshotsClient<Transport>;

/// The name our snapshotter is configured under in containerd.
pub const PROXY_NAME: &str = "ctrd-overlay";

/// Our snapshotter served in-process on a private socket, for one test.
pub struct InProcess {
    pub target: Target,
    pub snapshotter: Arc<OverlaySnapshotter>,
    stop: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<ctrd_snapshots::Result<()>>>,
    dir: tempfile::TempDir,
}

impl InProcess {
    /// Serves a new snapshotter rooted in a temporary folder.
    pub async fn start() -> InProcess {
        ctrd_testbed::require_root().expect("these tests mount overlays: run them as root");
        let dir = tempfile::Builder::new()
            .prefix("ctrd-overlay-test-")
            .tempdir_in("/tmp")
            .expect("temporary folder");
        let root = dir.path().join("root");
        let snapshotter = Arc::new(
            OverlaySnapshotter::open(&root, Options::detect()).expect("open the snapshotter"),
        );
        let socket = dir.path().join("s.sock");
        let listener = Listener::bind(&socket).expect("bind");
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&socket).expect("socket").permissions(),
        );
        assert_eq!(mode & 0o777, 0o600, "the socket is owner-only");
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(ctrd_snapshots::serve_until(
            listener,
            Arc::clone(&snapshotter),
            async move {
                let _ = stopped.await;
            },
        ));
        let target = Target::direct(&socket)
            .await
            .expect("connect to the in-process server")
            .with_folders(root.join("snapshots"))
            .with_layers(layer_count());
        InProcess {
            target,
            snapshotter,
            stop: Some(stop),
            server: Some(server),
            dir,
        }
    }

    /// Stops the server and checks it ended cleanly and removed its socket.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server
                .await
                .expect("server task")
                .expect("server ended cleanly");
        }
        assert!(!self.dir.path().join("s.sock").exists(), "socket removed");
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        ctrd_testbed::cleanup::unmount_under(self.dir.path());
    }
}

/// `CTRD_SNAPSHOT_LAYERS` (default 128): the layers of the `layers_128` case.
pub fn layer_count() -> usize {
    std::env::var("CTRD_SNAPSHOT_LAYERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(128)
}

/// The conformance case called `name`.
pub fn case(name: &str) -> &'static ctrd_snapshots::conformance::Case {
    ctrd_snapshots::conformance::CASES
        .iter()
        .find(|case| case.name == name)
        .unwrap_or_else(|| panic!("no conformance case {name}"))
}
