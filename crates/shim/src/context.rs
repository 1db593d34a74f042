//! What the framework hands a shim implementation.

use std::collections::HashMap;
use std::path::PathBuf;

use ctrd_api::prost_types::Any;
use tokio::sync::watch;

use crate::publisher::Publisher;
use crate::reaper::Reaper;

/// Everything a serving shim's task service needs from the framework.
#[derive(Debug, Clone)]
pub struct ServeContext {
    /// containerd namespace.
    pub namespace: String,
    /// The id the shim was started for (the group id when containers share a shim).
    pub id: String,
    /// The bundle folder the shim was started in.
    pub bundle: PathBuf,
    /// containerd's gRPC socket.
    pub grpc_address: String,
    /// containerd's ttrpc socket.
    pub ttrpc_address: String,
    /// Debug logging was asked for.
    pub debug: bool,
    /// Publishes events to containerd.
    pub publisher: Publisher,
    /// Reaps children and reports their exits.
    pub reaper: Reaper,
    /// Stops the shim.
    pub shutdown: Shutdown,
}

/// What `start` knows when it calls [`Shim::on_start`](crate::Shim::on_start).
#[derive(Debug, Clone)]
pub struct StartContext {
    /// containerd namespace.
    pub namespace: String,
    /// The container id.
    pub id: String,
    /// The group (shim) id the container will be served by.
    pub group: String,
    /// The container's bundle.
    pub bundle: PathBuf,
    /// Runtime options containerd passed, if any.
    pub options: Option<Any>,
    /// The bundle spec's annotations.
    pub annotations: HashMap<String, String>,
}

/// What `delete` knows.
#[derive(Debug, Clone)]
pub struct DeleteContext {
    /// containerd namespace.
    pub namespace: String,
    /// The container id.
    pub id: String,
    /// The container's bundle.
    pub bundle: PathBuf,
}

/// A shared switch that stops a serving shim: the task service triggers it (on `Shutdown`,
/// or when its last container is gone), the framework waits on it.
#[derive(Debug, Clone)]
pub struct Shutdown {
    tx: std::sync::Arc<watch::Sender<bool>>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown {
            tx: std::sync::Arc::new(watch::channel(false).0),
        }
    }
}

impl Shutdown {
    /// Asks the shim to stop once the current requests are answered.
    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }

    /// Whether a stop was asked for.
    pub fn is_triggered(&self) -> bool {
        *self.tx.borrow()
    }

    /// Waits until a stop is asked for.
    pub async fn wait(&self) {
        let mut rx = self.tx.subscribe();
        let _ = rx.wait_for(|stop| *stop).await;
    }
}
