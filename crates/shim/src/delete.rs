//! The `delete` action.

use std::io::Write;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::UnixStream;
use std::path::Path;

use prost::Message;

use crate::{DeleteContext, Error, Flags, Shim};

pub(crate) fn run<S: Shim>(flags: &Flags) -> Result<(), Error> {
    let bundle = match &flags.bundle {
        Some(b) => b.clone(),
        None => std::env::current_dir().map_err(|e| Error::io("reading the working folder", e))?,
    };
    let bundle_dir = bundle.clone();
    let ctx = DeleteContext {
        namespace: flags.namespace.clone(),
        id: flags.id.clone(),
        bundle,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("starting the runtime", e))?;
    let response = runtime.block_on(S::delete(ctx))?;
    remove_dead_socket(&bundle_dir);
    std::io::stdout()
        .write_all(&response.encode_to_vec())
        .map_err(|e| Error::io("writing the delete response", e))
}

/// Removes the socket named in the bundle's `address` file when no shim listens on it any
/// more: containerd runs `delete` after a shim died (killed, say), and a dead shim cannot
/// remove its own socket. A socket a live shim still serves (another container of its group)
/// is kept, and so is anything that is not a socket.
fn remove_dead_socket(bundle: &Path) {
    let Ok(address) = std::fs::read_to_string(bundle.join("address")) else {
        return;
    };
    let path = Path::new(crate::address::socket_path(address.trim()));
    let is_socket = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket());
    if is_socket && UnixStream::connect(path).is_err() {
        match std::fs::remove_file(path) {
            Ok(()) => tracing::info!(socket = %path.display(), "removed a dead shim's socket"),
            Err(e) => {
                tracing::warn!(socket = %path.display(), error = %e, "removing a dead shim's socket")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::net::UnixListener;

    use super::remove_dead_socket;

    #[test]
    fn only_a_socket_nobody_listens_on_is_removed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let bundle = dir.path();
        let socket = bundle.join("s.sock");
        let address = format!("unix://{}", socket.display());
        std::fs::write(bundle.join("address"), &address).expect("address file");

        // A live shim's socket (another container of its group) is kept.
        let listener = UnixListener::bind(&socket).expect("bind");
        remove_dead_socket(bundle);
        assert!(socket.exists(), "a served socket is kept");

        // Its shim died: the file is left, nobody listens.
        drop(listener);
        remove_dead_socket(bundle);
        assert!(!socket.exists(), "a dead shim's socket is removed");

        // Anything but a socket is never removed.
        std::fs::write(&socket, b"not a socket").expect("file");
        remove_dead_socket(bundle);
        assert!(socket.exists(), "a plain file is kept");
    }
}
