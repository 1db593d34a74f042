//! Our snapshotter binary as containerd's proxy plugin.

use std::path::Path;

use ctrd_client::Client;
use ctrd_testbed::{Containerd, Daemon, ProxyPlugin, SnapshotterProcess};

use super::{PROXY_NAME, Target};

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
        let containerd = Containerd::start_with_proxies(
            daemon,
            extra_path,
            &[ProxyPlugin {
                name: PROXY_NAME.into(),
                address: snapshotter.address(),
            }],
        )
        .unwrap_or_else(|e| panic!("starting containerd {}: {e}", daemon.version()));
        Proxied {
            containerd,
            snapshotter,
        }
    }

    /// A conformance target through containerd, in `namespace`.
    pub async fn target(&self, namespace: &str) -> Target {
        let client = Client::connect(self.containerd.grpc_address())
            .await
            .expect("connect to containerd")
            .with_namespace(namespace);
        let lease = format!("{namespace}-lease");
        client
            .leases()
            .create(ctrd_api::containerd::services::leases::v1::CreateRequest {
                id: lease.clone(),
                labels: Default::default(),
            })
            .await
            .expect("create a lease");
        Target {
            client,
            snapshotter: PROXY_NAME.into(),
            proxied: true,
            root: self.snapshotter.root(),
            lease: Some(lease),
        }
    }
}
