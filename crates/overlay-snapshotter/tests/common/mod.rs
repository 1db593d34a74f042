//! What the overlay snapshotter's tests share: a snapshots client for either an in-process
//! server or containerd with our snapshotter as a proxy plugin, and the conformance cases.

#![allow(dead_code)]

pub mod conformance;
pub mod proxy;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ctrd_api::containerd::services::snapshots::v1 as api;
use ctrd_client::{Client, Transport};
use ctrd_overlay_snapshotter::{Options, OverlaySnapshotter};
use ctrd_snapshots::{Listener, Mount};
use tokio::sync::oneshot;

/// The snapshots client type.
pub type Snapshots = api::snapshots_client::SnapshotsClient<Transport>;

/// The name our snapshotter is configured under in containerd.
pub const PROXY_NAME: &str = "ctrd-overlay";

/// Where the conformance cases send their calls.
#[derive(Clone)]
pub struct Target {
    /// The client.
    pub client: Client,
    /// The `snapshotter` field of every request.
    pub snapshotter: String,
    /// Whether containerd sits in between (its metadata layer keeps labels, names and
    /// removes lazily).
    pub proxied: bool,
    /// The snapshotter's root folder, to check what is on disk.
    pub root: PathBuf,
    /// The lease every call runs under (containerd collects snapshots no lease holds).
    pub lease: Option<String>,
}

impl Target {
    /// A fresh snapshots client.
    pub fn snapshots(&self) -> Snapshots {
        self.client.snapshots()
    }

    /// `message` as a request under this target's lease.
    pub fn req<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        if let Some(lease) = &self.lease
            && let Ok(value) = lease.parse()
        {
            request.metadata_mut().insert("containerd-lease", value);
        }
        request
    }

    /// Through containerd: ends the lease with a synchronous garbage collection (which
    /// removes what was removed from the proxy too) and takes a new one.
    pub async fn collect_garbage(&self) {
        let Some(lease) = &self.lease else { return };
        use ctrd_api::containerd::services::leases::v1 as leases;
        self.client
            .leases()
            .delete(leases::DeleteRequest {
                id: lease.clone(),
                sync: true,
            })
            .await
            .expect("delete the lease");
        self.client
            .leases()
            .create(leases::CreateRequest {
                id: lease.clone(),
                labels: Default::default(),
            })
            .await
            .expect("create the lease");
    }
}

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
        let client = Client::connect(&socket)
            .await
            .expect("connect to the in-process server")
            .with_namespace("default");
        InProcess {
            target: Target {
                client,
                snapshotter: "ours".into(),
                proxied: false,
                root,
                lease: None,
            },
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

/// A folder with the snapshot's mounts on it, unmounted and removed when dropped.
pub struct Mounted {
    dir: tempfile::TempDir,
}

impl Mounted {
    /// Mounts `mounts` (as the API returned them) on a new folder.
    pub fn new(mounts: &[ctrd_api::containerd::types::Mount]) -> Mounted {
        let dir = tempfile::Builder::new()
            .prefix("ctrd-mnt-")
            .tempdir_in("/tmp")
            .expect("mount point");
        let plain: Vec<Mount> = mounts
            .iter()
            .map(|m| Mount {
                kind: m.r#type.clone(),
                source: m.source.clone(),
                target: m.target.clone(),
                options: m.options.clone(),
            })
            .collect();
        ctrd_snapshots::mount::mount_all(&plain, dir.path())
            .unwrap_or_else(|e| panic!("mounting {mounts:?}: {}", e.full_message()));
        Mounted { dir }
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        ctrd_snapshots::mount::unmount_all(self.dir.path());
    }
}

/// Labels from pairs.
pub fn labels(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).into(), (*v).into()))
        .collect()
}
