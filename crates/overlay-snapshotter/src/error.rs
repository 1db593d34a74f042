//! The binary's error type (the snapshotter itself answers with [`ctrd_snapshots::Error`]).

use std::path::PathBuf;

/// Why the snapshotter could not start or serve.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A snapshot call or the server failed.
    #[error(transparent)]
    Snapshots(ctrd_snapshots::Error),
    /// The tokio runtime could not start.
    #[error("starting the async runtime: {0}")]
    Runtime(std::io::Error),
    /// The root folder cannot be used.
    #[error("root folder {path}: {error}")]
    Root {
        /// The folder.
        path: PathBuf,
        /// The system's error.
        error: std::io::Error,
    },
}

impl From<ctrd_snapshots::Error> for Error {
    fn from(error: ctrd_snapshots::Error) -> Self {
        Error::Snapshots(error)
    }
}
