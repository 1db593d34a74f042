//! The client's error type: every variant names the call or object that failed.

use std::path::PathBuf;
use std::time::Duration;

/// What went wrong, and where.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The socket could not be reached.
    #[error("connecting to containerd at {}: {reason} (is containerd running there?)", address.display())]
    Connect {
        /// The socket path.
        address: PathBuf,
        /// The transport's explanation.
        reason: String,
    },
    /// A namespace name containerd would refuse.
    #[error(
        "invalid namespace {0:?}: use letters, digits, '.', '_' and '-', starting with a letter or digit"
    )]
    InvalidNamespace(String),
    /// The namespace does not exist on the daemon.
    #[error("namespace {0:?} does not exist (list them with `ctr namespaces ls`)")]
    UnknownNamespace(String),
    /// containerd refused or failed a call.
    #[error("{call} {object}: {message}")]
    Call {
        /// The API call, such as `images.Get`.
        call: &'static str,
        /// The object it acted on, such as `image docker.io/library/busybox:latest`.
        object: String,
        /// containerd's status code.
        code: tonic::Code,
        /// containerd's message.
        message: String,
    },
    /// A call got no answer in time.
    #[error("{call} {object}: no answer within {timeout:?}")]
    Timeout {
        /// The API call.
        call: &'static str,
        /// The object it acted on.
        object: String,
        /// The per-call timeout.
        timeout: Duration,
    },
    /// A local file operation failed.
    #[error("{}: {error}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        error: std::io::Error,
    },
    /// An image archive is not what it claims to be.
    #[error("image archive {}: {reason}", path.display())]
    Archive {
        /// The archive file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Content did not hash to the digest it was written under.
    #[error("content {expected}: digest mismatch (the data hashes to {actual})")]
    DigestMismatch {
        /// The digest the data should have.
        expected: String,
        /// The digest the data has (or containerd's description of it).
        actual: String,
    },
    /// Content was shorter or longer than announced.
    #[error("content {digest}: size mismatch: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        /// The blob's digest.
        digest: String,
        /// The announced size.
        expected: u64,
        /// The size found.
        actual: u64,
    },
    /// A registry refused or failed a request.
    #[error("pulling {reference}: {reason}")]
    Registry {
        /// The image reference.
        reference: String,
        /// What the registry answered.
        reason: String,
    },
    /// An image's manifest, index or config is unusable.
    #[error("image {image}: {reason}")]
    Image {
        /// The image name or blob digest.
        image: String,
        /// What is wrong.
        reason: String,
    },
    /// A runtime spec could not be built or encoded.
    #[error("runtime spec of container {id}: {reason}")]
    Spec {
        /// The container id.
        id: String,
        /// What is wrong.
        reason: String,
    },
    /// Task stdio could not be set up.
    #[error("stdio of {id}: {reason}")]
    Stdio {
        /// The container or exec id.
        id: String,
        /// What failed.
        reason: String,
    },
}

impl Error {
    /// containerd's status code, for errors that came from a call.
    pub fn code(&self) -> Option<tonic::Code> {
        match self {
            Error::Call { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// Whether containerd answered "not found".
    pub fn is_not_found(&self) -> bool {
        self.code() == Some(tonic::Code::NotFound)
    }

    /// Whether containerd answered "already exists".
    pub fn is_already_exists(&self) -> bool {
        self.code() == Some(tonic::Code::AlreadyExists)
    }

    pub(crate) fn call(
        call: &'static str,
        object: impl Into<String>,
        status: tonic::Status,
    ) -> Error {
        Error::Call {
            call,
            object: object.into(),
            code: status.code(),
            message: status.message().to_owned(),
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            error: source,
        }
    }

    pub(crate) fn image(image: impl Into<String>, reason: impl Into<String>) -> Error {
        Error::Image {
            image: image.into(),
            reason: reason.into(),
        }
    }
}

/// `error` and every cause under it, joined by `": "` (hyper's client errors say only
/// "client error (Connect)" at the top; the reason, such as an unknown certificate issuer,
/// is further down).
pub(crate) fn causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut next = error.source();
    while let Some(cause) = next {
        let line = cause.to_string();
        if !text.contains(&line) {
            text.push_str(": ");
            text.push_str(&line);
        }
        next = cause.source();
    }
    text
}
