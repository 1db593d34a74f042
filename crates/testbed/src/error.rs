//! The test bed's error type.

use std::path::PathBuf;

/// Why the test bed could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Not running as root.
    #[error(
        "the real test bed needs root (it runs containerd and containers); run the tests as root"
    )]
    NotRoot,
    /// A program the test bed runs is not installed.
    #[error("{what} not found at {path}: run `{setup}` first", setup = crate::SETUP_COMMAND)]
    Missing {
        /// What is missing.
        what: String,
        /// Where it was looked for.
        path: PathBuf,
    },
    /// containerd did not come up.
    #[error("containerd {daemon} did not start: {reason}\n--- its log ---\n{log}")]
    DaemonStart {
        /// Which daemon.
        daemon: String,
        /// What went wrong.
        reason: String,
        /// The end of its log.
        log: String,
    },
    /// A workspace binary a test needs did not build.
    #[error("building {what} failed: {reason}")]
    Build {
        /// The package and binary.
        what: String,
        /// Cargo's output.
        reason: String,
    },
    /// A CRI call failed.
    #[error("CRI {call} failed: {error}")]
    Cri {
        /// The call.
        call: String,
        /// containerd's answer.
        error: String,
    },
    /// A helper the test bed makes (certificates, a token, a server) could not be made.
    #[error("{what}: {reason}")]
    Setup {
        /// What was being made.
        what: String,
        /// Why it failed.
        reason: String,
    },
    /// critest ran but its results could not be read.
    #[error("critest {what}: {reason}")]
    Critest {
        /// What was read.
        what: String,
        /// Why it failed, and where to look.
        reason: String,
    },
    /// A file operation failed.
    #[error("{path}: {error}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        error: std::io::Error,
    },
}

impl Error {
    pub(crate) fn cri(call: &str, status: &ctrd_api::tonic::Status) -> Error {
        Error::Cri {
            call: call.into(),
            error: format!("{:?}: {}", status.code(), status.message()),
        }
    }

    pub(crate) fn setup(what: impl Into<String>, reason: impl std::fmt::Display) -> Error {
        Error::Setup {
            what: what.into(),
            reason: reason.to_string(),
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, error: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            error,
        }
    }
}
