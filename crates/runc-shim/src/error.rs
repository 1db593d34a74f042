//! Why a task call failed, and the ttrpc status containerd gets for it.

use ctrd_api::ttrpc::{self, Code};

use crate::process::InvalidTransition;

/// A task call's failure. Each variant names the container (and exec) it is about; the
/// conversion to a ttrpc error picks the status code containerd acts on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No container has this id.
    #[error("container {id} not found")]
    ContainerNotFound {
        /// The container id.
        id: String,
    },
    /// The container has no exec of this id.
    #[error("exec {exec_id} of container {id} not found")]
    ExecNotFound {
        /// The container id.
        id: String,
        /// The exec id.
        exec_id: String,
    },
    /// A container of this id exists already.
    #[error("container {id} exists")]
    ContainerExists {
        /// The container id.
        id: String,
    },
    /// The container has an exec of this id already.
    #[error("exec {exec_id} of container {id} exists")]
    ExecExists {
        /// The container id.
        id: String,
        /// The exec id.
        exec_id: String,
    },
    /// The call needs a running container.
    #[error("container {id} is not running")]
    NotRunning {
        /// The container id.
        id: String,
    },
    /// The call needs a container (or exec) that no longer runs.
    #[error("{process} is still running")]
    StillRunning {
        /// `container ID` or `exec EXEC of container ID`.
        process: String,
    },
    /// The process has ended or was never started, so it cannot be signalled.
    #[error("{process} is not running: {state}")]
    NoProcess {
        /// `container ID` or `exec EXEC of container ID`.
        process: String,
        /// Its state's name.
        state: &'static str,
    },
    /// The process never ran (not started yet, or its start failed), so there is nothing to
    /// signal. (containerd's client takes this code as "nothing to wait for" when it kills a
    /// process before deleting it; with "not found" it waits for an exit.)
    #[error("{process} was never started")]
    NotStarted {
        /// `container ID` or `exec EXEC of container ID`.
        process: String,
    },
    /// The call is not valid in the process's state.
    #[error("{process}: {transition}")]
    InvalidState {
        /// `container ID` or `exec EXEC of container ID`.
        process: String,
        /// The refused transition.
        transition: InvalidTransition,
    },
    /// The request is malformed.
    #[error("invalid {what}: {reason}")]
    InvalidArgument {
        /// What is invalid (the id, the exec spec, the resources).
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// runc failed (its message names the command and runc's reason).
    #[error("{cause}")]
    Runc {
        /// runc's error.
        cause: ctrd_runc::Error,
    },
    /// The root filesystem could not be mounted.
    #[error("container {id}: mounting the root filesystem: {reason}")]
    Mount {
        /// The container id.
        id: String,
        /// What failed.
        reason: String,
    },
    /// The standard I/O containerd named could not be opened.
    #[error("container {id}: opening stdio: {reason}")]
    Stdio {
        /// The container id.
        id: String,
        /// What failed.
        reason: String,
    },
    /// The process has no terminal to resize.
    #[error("{process} has no terminal")]
    NoTerminal {
        /// `container ID` or `exec EXEC of container ID`.
        process: String,
    },
    /// The container's cgroup no longer exists (it was deleted under the shim).
    #[error("container {id}: its cgroup {} is gone", path.display())]
    CgroupGone {
        /// The container id.
        id: String,
        /// The cgroup folder that was expected.
        path: std::path::PathBuf,
    },
    /// An operation of the shim itself failed.
    #[error("container {id}: {context}: {cause}")]
    Io {
        /// The container id.
        id: String,
        /// What was being done.
        context: &'static str,
        /// The error.
        cause: std::io::Error,
    },
}

impl Error {
    /// The status code containerd gets for this error.
    pub fn code(&self) -> Code {
        match self {
            Error::ContainerNotFound { .. } | Error::ExecNotFound { .. } => Code::NOT_FOUND,
            Error::CgroupGone { .. } => Code::NOT_FOUND,
            Error::NoProcess { .. } => Code::NOT_FOUND,
            Error::ContainerExists { .. } | Error::ExecExists { .. } => Code::ALREADY_EXISTS,
            Error::NotRunning { .. }
            | Error::StillRunning { .. }
            | Error::InvalidState { .. }
            | Error::NotStarted { .. }
            | Error::NoTerminal { .. } => Code::FAILED_PRECONDITION,
            Error::InvalidArgument { .. } | Error::Stdio { .. } => Code::INVALID_ARGUMENT,
            Error::Runc { cause } if cause.is_not_found() => Code::NOT_FOUND,
            Error::Runc { cause } if cause.is_timeout() => Code::DEADLINE_EXCEEDED,
            Error::Runc { .. } => Code::UNKNOWN,
            Error::Mount { .. } | Error::Io { .. } => Code::INTERNAL,
        }
    }

    /// An invalid request field.
    pub fn invalid(what: &'static str, reason: impl ToString) -> Error {
        Error::InvalidArgument {
            what,
            reason: reason.to_string(),
        }
    }
}

impl From<ctrd_runc::Error> for Error {
    fn from(cause: ctrd_runc::Error) -> Error {
        Error::Runc { cause }
    }
}

impl From<Error> for ttrpc::Error {
    fn from(e: Error) -> ttrpc::Error {
        ttrpc::Error::RpcStatus(ttrpc::get_status(e.code(), e))
    }
}

/// How error messages name a process: `container ID` or `exec EXEC of container ID`.
pub fn process_name(id: &str, exec_id: &str) -> String {
    if exec_id.is_empty() {
        format!("container {id}")
    } else {
        format!("exec {exec_id} of container {id}")
    }
}
