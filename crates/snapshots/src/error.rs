//! The crate's one error type, and the gRPC code each variant maps to.

use std::path::PathBuf;

/// Why a snapshot call failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No snapshot has this key.
    #[error("snapshot {key:?} not found")]
    NotFound {
        /// The key asked for.
        key: String,
    },
    /// A snapshot with this key or name exists already.
    #[error("snapshot {key:?} already exists")]
    AlreadyExists {
        /// The key that is taken.
        key: String,
    },
    /// A parent must be a committed snapshot.
    #[error("parent {parent:?} is {kind}, not committed: only committed snapshots can be parents")]
    ParentNotCommitted {
        /// The parent asked for.
        parent: String,
        /// What it is instead.
        kind: &'static str,
    },
    /// The call needs a snapshot of another kind.
    #[error("snapshot {key:?} is {kind}: {call} needs {wanted}")]
    WrongKind {
        /// The snapshot.
        key: String,
        /// What it is.
        kind: &'static str,
        /// The call.
        call: &'static str,
        /// What the call needs.
        wanted: &'static str,
    },
    /// Snapshots still stack on this one.
    #[error("snapshot {key:?} has {children} child snapshot(s): remove them first")]
    HasChildren {
        /// The snapshot.
        key: String,
        /// How many children it has.
        children: usize,
    },
    /// A commit onto a parent other than the one the active snapshot was prepared on: only a
    /// snapshot prepared without a parent can be committed onto one (rebase).
    #[error(
        "cannot commit {key:?} onto {rebase:?}: it was prepared on {parent:?} (only a snapshot \
         prepared without a parent can be committed onto one)"
    )]
    ParentChanged {
        /// The active snapshot.
        key: String,
        /// The parent it was prepared on.
        parent: String,
        /// The parent the commit asked for.
        rebase: String,
    },
    /// A key or name that cannot be used.
    #[error("invalid snapshot key {key:?}: {reason}")]
    InvalidKey {
        /// The key given.
        key: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A label over containerd's size limit.
    #[error(
        "label {label:?} is {len} bytes with its value, over the {max} byte limit",
        max = crate::MAX_LABEL_SIZE
    )]
    LabelTooLong {
        /// The label's key (cut to 64 bytes).
        label: String,
        /// Key and value length.
        len: usize,
    },
    /// A `containerd.io/snapshot/uidmapping` or `gidmapping` label that is not a map
    /// containerd's way (`CONTAINER:HOST:SIZE` entries separated by `,`, root mapped).
    #[error("snapshot {key:?}: bad id mapping labels: {reason}")]
    BadIdMapping {
        /// The snapshot.
        key: String,
        /// What is wrong, naming the entry.
        reason: String,
    },
    /// An update field path other than `labels` and `labels.KEY`.
    #[error("cannot update field {path:?}: only \"labels\" and \"labels.KEY\" can be updated")]
    BadFieldPath {
        /// The field path given.
        path: String,
    },
    /// A filter that does not parse.
    #[error("invalid filter {filter:?} at byte {position}: {reason}")]
    Filter {
        /// The filter text.
        filter: String,
        /// Where it went wrong.
        position: usize,
        /// What was expected.
        reason: String,
    },
    /// The metadata database failed.
    #[error("metadata store: {call} failed: {error}")]
    Store {
        /// What the store was doing.
        call: &'static str,
        /// The database's error.
        error: redb::Error,
    },
    /// A stored record does not decode.
    #[error("metadata store: record of {key:?} is corrupt: {error}")]
    Corrupt {
        /// The snapshot whose record is corrupt.
        key: String,
        /// The decoding error.
        error: serde_json::Error,
    },
    /// A file operation failed.
    #[error("{call} {path}: {error}")]
    Io {
        /// The operation.
        call: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// The system's error.
        error: std::io::Error,
    },
    /// The gRPC server failed.
    #[error("serving on {address}: {error}")]
    Serve {
        /// The socket.
        address: PathBuf,
        /// The transport's error.
        error: tonic::transport::Error,
    },
    /// Connecting to a snapshotter's or containerd's socket failed.
    #[cfg(feature = "conformance")]
    #[error("connecting to {address}: {reason}")]
    Connect {
        /// The socket.
        address: PathBuf,
        /// Why it failed.
        reason: String,
    },
    /// A conformance case found the snapshotter behaving otherwise than containerd expects.
    #[cfg(feature = "conformance")]
    #[error("conformance case {case}: {check}")]
    Conformance {
        /// The case.
        case: &'static str,
        /// The check that failed, and what was seen.
        check: String,
    },
    /// A conformance case that cannot run against this target (it needs what the target's
    /// containerd does not pass on); it neither passed nor failed.
    #[cfg(feature = "conformance")]
    #[error("conformance case {case} does not apply here: {reason}")]
    NotApplicable {
        /// The case.
        case: &'static str,
        /// What it needs that the target lacks.
        reason: String,
    },
    /// Performing a snapshot's mounts failed (nothing of them stays mounted).
    #[error("{0}")]
    Mount(ctrd_mount::Error),
    /// The snapshotter does not support this call or option.
    #[error("{what} is not supported by this snapshotter")]
    Unsupported {
        /// What was asked for.
        what: String,
    },
}

/// This crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Whether this is an I/O error of the metadata store's database (a full disk, say),
    /// after which redb needs the database opened again.
    pub fn is_io(&self) -> bool {
        matches!(
            self,
            Error::Store {
                error: redb::Error::Io(_) | redb::Error::PreviousIo,
                ..
            }
        )
    }

    /// An [`Error::Io`] for `call` on `path`.
    pub fn io(call: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            call,
            path: path.into(),
            error: source,
        }
    }

    /// An [`Error::Store`] for `call`.
    pub(crate) fn store(call: &'static str, source: impl Into<redb::Error>) -> Error {
        Error::Store {
            call,
            error: source.into(),
        }
    }

    /// The gRPC code containerd expects for this error (it turns it back into its own
    /// `errdefs` kinds: not found, already exists, failed precondition, invalid argument).
    pub fn code(&self) -> tonic::Code {
        match self {
            Error::NotFound { .. } => tonic::Code::NotFound,
            Error::AlreadyExists { .. } => tonic::Code::AlreadyExists,
            Error::ParentNotCommitted { .. }
            | Error::WrongKind { .. }
            | Error::HasChildren { .. } => tonic::Code::FailedPrecondition,
            Error::InvalidKey { .. }
            | Error::ParentChanged { .. }
            | Error::LabelTooLong { .. }
            | Error::BadFieldPath { .. }
            | Error::BadIdMapping { .. }
            | Error::Filter { .. } => tonic::Code::InvalidArgument,
            Error::Unsupported { .. } => tonic::Code::Unimplemented,
            Error::Store { .. }
            | Error::Corrupt { .. }
            | Error::Io { .. }
            | Error::Serve { .. }
            | Error::Mount(_) => tonic::Code::Internal,
            #[cfg(feature = "conformance")]
            Error::Connect { .. } => tonic::Code::Unavailable,
            #[cfg(feature = "conformance")]
            Error::Conformance { .. } => tonic::Code::Internal,
            #[cfg(feature = "conformance")]
            Error::NotApplicable { .. } => tonic::Code::Unimplemented,
        }
    }

    /// The message with every underlying cause, `: `-separated.
    pub fn full_message(&self) -> String {
        let mut message = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        message
    }
}

impl From<Error> for tonic::Status {
    fn from(error: Error) -> tonic::Status {
        tonic::Status::new(error.code(), error.full_message())
    }
}

impl From<ctrd_mount::Error> for Error {
    fn from(error: ctrd_mount::Error) -> Error {
        Error::Mount(error)
    }
}
