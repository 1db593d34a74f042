//! The wrapper's error type.

use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

/// Why a runc command failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The runc binary could not be run.
    #[error("runc binary {binary:?} not found or not executable: {error}")]
    BinaryNotFound {
        /// The binary as configured.
        binary: PathBuf,
        /// The error from spawning it.
        error: std::io::Error,
    },
    /// A container id runc would refuse, or that could escape its state folder.
    #[error("invalid container id {id:?}: {reason}")]
    InvalidId {
        /// The id.
        id: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A bundle folder without `config.json`.
    #[error("bundle {bundle} has no config.json")]
    MissingConfig {
        /// The bundle folder.
        bundle: PathBuf,
    },
    /// runc ran and failed.
    #[error("`{command}` failed ({status}): {message}")]
    Command {
        /// The command line, such as `runc delete c1`.
        command: String,
        /// runc's exit status.
        status: ExitStatus,
        /// What runc said (from its JSON log when configured, else its standard error).
        message: String,
    },
    /// runc did not finish within the configured timeout and was killed.
    #[error("`{command}` did not finish within {timeout:?} and was killed")]
    Timeout {
        /// The command line.
        command: String,
        /// The timeout.
        timeout: Duration,
    },
    /// The caller's deadline ([`with_deadline`](crate::deadline::with_deadline)) passed while
    /// runc ran: it was killed and reaped. Also returned, without running runc, when the
    /// deadline had passed before the command began.
    #[error(
        "`{command}` did not finish by the caller's deadline (within {after:?}) and was killed"
    )]
    DeadlineExceeded {
        /// The command line.
        command: String,
        /// How long the command had been allowed to run.
        after: Duration,
    },
    /// An I/O operation around the command failed.
    #[error("`{command}`: {context}: {error}")]
    Io {
        /// The command line.
        command: String,
        /// What was being done.
        context: &'static str,
        /// The underlying error.
        error: std::io::Error,
    },
    /// runc printed something we could not parse.
    #[error("`{command}` printed unexpected output: {message}")]
    Parse {
        /// The command line.
        command: String,
        /// What did not parse, and why.
        message: String,
    },
    /// Setting up the process's standard I/O failed.
    #[error("{context}: {error}")]
    Setup {
        /// What was being set up.
        context: String,
        /// The underlying error.
        error: std::io::Error,
    },
}

impl Error {
    /// Whether runc failed because the container does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::Command { message, .. }
            if message.contains("does not exist") || message.contains("not exist"))
    }

    /// Whether runc failed because the container's process has already exited (`runc kill`
    /// on a container whose init is gone: "container not running").
    pub fn is_not_running(&self) -> bool {
        matches!(self, Error::Command { message, .. }
            if message.contains("container not running")
                || message.contains("process already finished"))
    }

    /// Whether runc was killed at its timeout or at the caller's deadline (or not started
    /// because the deadline had passed).
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Timeout { .. } | Error::DeadlineExceeded { .. })
    }

    pub(crate) fn setup(context: impl Into<String>, error: std::io::Error) -> Error {
        Error::Setup {
            context: context.into(),
            error,
        }
    }
}

/// The wrapper's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
