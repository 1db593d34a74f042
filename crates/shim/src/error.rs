//! The framework's error type.

use std::path::PathBuf;

/// Why a shim action failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The command line is wrong.
    #[error("usage: {0}")]
    Usage(String),
    /// A file or socket operation failed.
    #[error("{context}: {error}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        error: std::io::Error,
    },
    /// The bundle's `config.json` could not be read.
    #[error("bundle {bundle}: {message}")]
    Bundle {
        /// The bundle folder.
        bundle: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A namespace or id is not a containerd identifier.
    #[error("{what} \"{value}\" is refused: {reason}")]
    InvalidIdentifier {
        /// Which value (`"namespace"`, `"id"`).
        what: &'static str,
        /// The value, escaped and cut at 100 characters.
        value: String,
        /// Why.
        reason: &'static str,
    },
    /// ttrpc failed.
    #[error("ttrpc: {0}")]
    Ttrpc(ctrd_api::ttrpc::Error),
    /// The shim implementation failed.
    #[error("{0}")]
    Shim(String),
}

impl Error {
    pub(crate) fn io(context: impl Into<String>, error: std::io::Error) -> Error {
        Error::Io {
            context: context.into(),
            error,
        }
    }
}

impl From<ctrd_api::ttrpc::Error> for Error {
    fn from(e: ctrd_api::ttrpc::Error) -> Error {
        Error::Ttrpc(e)
    }
}

impl From<nix::Error> for Error {
    fn from(e: nix::Error) -> Error {
        Error::io("system call", e.into())
    }
}
