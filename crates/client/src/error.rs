//! The client's error type.

use std::path::PathBuf;

/// Why a client could not be made.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The socket could not be reached.
    #[error("connecting to containerd at {address}: {error}")]
    Connect {
        /// The socket path.
        address: PathBuf,
        /// The transport's error.
        error: tonic::transport::Error,
    },
    /// A namespace name containerd would refuse.
    #[error(
        "invalid namespace {0:?}: use letters, digits, '.', '_' and '-', starting with a letter or digit"
    )]
    InvalidNamespace(String),
}
