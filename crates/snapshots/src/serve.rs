//! Serving a [`Snapshotter`] on an owner-only unix socket until SIGTERM.

use std::future::Future;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::net::UnixListener;
use tokio::signal::unix::{SignalKind, signal};
use tokio_stream::StreamExt;
use tokio_stream::wrappers::UnixListenerStream;

use crate::{Error, Result, SnapshotsService, Snapshotter};

/// A listening unix socket that only its owner can connect to (its mode is 0600, and the
/// server hangs up on any other uid); its file is removed when serving ends.
#[derive(Debug)]
pub struct Listener {
    inner: UnixListener,
    path: PathBuf,
}

impl Listener {
    /// Binds the socket at `path`, replacing a stale socket file. The socket is made in a
    /// private (0700) folder beside `path`, restricted to 0600, then renamed into place, so
    /// it is never reachable with wider permissions. Call inside a tokio runtime.
    pub fn bind(path: &Path) -> Result<Listener> {
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        std::fs::create_dir_all(parent).map_err(|e| Error::io("creating", parent, e))?;
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let private = parent.join(format!(".{file_name}.{}.d", std::process::id()));
        let _ = std::fs::remove_dir_all(&private);
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&private)
            .map_err(|e| Error::io("creating", &private, e))?;
        let staging = private.join("s");
        let result = UnixListener::bind(&staging)
            .map_err(|e| Error::io("binding", &staging, e))
            .and_then(|inner| {
                std::fs::set_permissions(&staging, std::fs::Permissions::from_mode(0o600))
                    .map_err(|e| Error::io("restricting", &staging, e))?;
                std::fs::rename(&staging, path)
                    .map_err(|e| Error::io("placing the socket at", path, e))?;
                Ok(inner)
            });
        let _ = std::fs::remove_dir_all(&private);
        Ok(Listener {
            inner: result?,
            path: path.to_owned(),
        })
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Serves `snapshotter` as containerd's `Snapshots` gRPC service on `listener` until the
/// process gets SIGTERM or SIGINT; in-flight calls finish, then the socket file is removed.
pub async fn serve<S: Snapshotter>(listener: Listener, snapshotter: S) -> Result<()> {
    let mut term =
        signal(SignalKind::terminate()).map_err(|e| Error::io("handling", "SIGTERM", e))?;
    let mut int =
        signal(SignalKind::interrupt()).map_err(|e| Error::io("handling", "SIGINT", e))?;
    serve_until(listener, Arc::new(snapshotter), async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: stopping"),
            _ = int.recv() => tracing::info!("SIGINT: stopping"),
        }
    })
    .await
}

/// Serves `snapshotter` on `listener` until `shutdown` completes (for embedding and
/// tests), then removes the socket file.
pub async fn serve_until<S: Snapshotter>(
    listener: Listener,
    snapshotter: Arc<S>,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    let Listener { inner, path } = listener;
    // Past the socket's mode, the server itself accepts only its own uid (a hard link or a
    // descriptor passed to another user would otherwise reach it).
    let owner = nix::unistd::getuid().as_raw();
    let incoming = UnixListenerStream::new(inner).filter(move |stream| match stream {
        Ok(stream) => match stream.peer_cred() {
            Ok(cred) if cred.uid() == owner => true,
            Ok(cred) => {
                tracing::warn!(uid = cred.uid(), "refused a connection from another user");
                false
            }
            Err(e) => {
                tracing::warn!(error = %e, "refused a connection without credentials");
                false
            }
        },
        Err(_) => true,
    });
    let result = tonic::transport::Server::builder()
        .add_service(SnapshotsService::new(snapshotter).into_server())
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await;
    let _ = std::fs::remove_file(&path);
    result.map_err(|source| Error::Serve {
        address: path,
        error: source,
    })
}
