//! The tool's error type: one line a user can act on.

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The client (or containerd) failed.
    #[error(transparent)]
    Client(ctrd_client::Error),
    /// The command line asks for something impossible.
    #[error("{0}")]
    Usage(String),
    /// The terminal could not be set up.
    #[error("terminal: {0}")]
    Terminal(String),
}

impl From<ctrd_client::Error> for Error {
    fn from(error: ctrd_client::Error) -> Self {
        Error::Client(error)
    }
}
