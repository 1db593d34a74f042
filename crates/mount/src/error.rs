//! The crate's one error type.

use std::path::PathBuf;

/// Why a list of mounts could not be performed. Nothing of the list stays mounted.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// One mount of the list failed.
    #[error("mounting {from} ({kind}) on {target}: {reason} (mount {index} of {count})")]
    Mount {
        /// What was to be mounted (the mount's `source`).
        from: String,
        /// The filesystem type.
        kind: String,
        /// Where.
        target: PathBuf,
        /// What went wrong: a refused option, a loop device, or the system's error.
        reason: String,
        /// The mount's place in the list, from 1.
        index: usize,
        /// How many mounts the list holds.
        count: usize,
    },
}

/// This crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
