//! The crate's error type.

use std::path::PathBuf;

/// What went wrong in a log driver, its sinks or the reader.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A descriptor containerd's shim passes to every log driver is not open.
    #[error(
        "fd {fd} ({what}) is not open: this program is a containerd log driver; start it with \
         `ctr run --log-uri binary:///path/to/it?...`, not by hand"
    )]
    MissingFd {
        /// The descriptor number.
        fd: i32,
        /// What the shim passes on it.
        what: &'static str,
    },
    /// The driver's descriptors were already taken by an earlier call.
    #[error("the log driver's fds 3 and 4 (or 3, 4 and 5) were already taken by this process")]
    FdsTaken,
    /// An environment variable every shim sets is missing.
    #[error("environment variable {var} is not set: the shim sets it for every log driver")]
    MissingEnv {
        /// The variable.
        var: &'static str,
    },
    /// Writing the readiness byte to fd 5 failed.
    #[error("signalling readiness on fd 5 failed (did the shim give up waiting?): {error}")]
    Ready {
        /// The write error.
        error: std::io::Error,
    },
    /// The arguments do not come in `key value` pairs.
    #[error(
        "log driver arguments come in `key value` pairs (from the URI query `?key=value&...`); \
         got an odd number of them: {args:?}"
    )]
    OddArguments {
        /// The arguments.
        args: Vec<String>,
    },
    /// An argument is not UTF-8.
    #[error("log driver argument {arg:?} is not UTF-8")]
    NotUtf8 {
        /// The argument, lossily decoded.
        arg: String,
    },
    /// The same option was given twice.
    #[error("option {key:?} is given twice")]
    DuplicateOption {
        /// The option.
        key: String,
    },
    /// An option nothing uses.
    #[error("unknown option {key:?}; the options here are: {known}")]
    UnknownOption {
        /// The option.
        key: String,
        /// The options understood with the chosen sink.
        known: String,
    },
    /// An option's value does not parse.
    #[error("option {key}={value:?} is invalid: expected {expected}")]
    BadOption {
        /// The option.
        key: String,
        /// Its value.
        value: String,
        /// What it should look like.
        expected: String,
    },
    /// A required option is missing.
    #[error("option {key:?} is required {why}")]
    MissingOption {
        /// The option.
        key: &'static str,
        /// When it is required.
        why: &'static str,
    },
    /// The sink lost output: it refused records (the disk was full, the journal gone), or
    /// could not write what it held when the run ended. Failures it recovered from are not
    /// this error.
    #[error(
        "{refused} of {records} records ({refused_bytes} bytes) were lost{}: the sink failed {failures} times; the first failure: {first}",
        unflushed.as_ref().map(|e| format!(", and what it held at the end was not written ({e})")).unwrap_or_default()
    )]
    OutputLost {
        /// Records the sink refused.
        refused: u64,
        /// Records read from the container.
        records: u64,
        /// Bytes of the refused records.
        refused_bytes: u64,
        /// The last flush's error, if it failed.
        unflushed: Option<String>,
        /// How many writes and flushes failed.
        failures: u64,
        /// The first failure's message.
        first: String,
    },
    /// Options that do not go together.
    #[error("{0}")]
    Conflict(String),
    /// A system call of the driver's main loop failed.
    #[error("{call} failed: {error}")]
    Sys {
        /// The call, such as `poll` or `read from fd 3`.
        call: &'static str,
        /// The error.
        error: std::io::Error,
    },
    /// A file could not be opened, written, renamed or read.
    #[error("{action} {path}: {error}")]
    File {
        /// What was done, such as `opening log file`.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The error.
        error: std::io::Error,
    },
    /// A log file holds a line that is not of its format.
    #[error("{path} line {line}: not a {format} log line: {reason}")]
    Format {
        /// The file.
        path: PathBuf,
        /// The line number (from 1).
        line: u64,
        /// The format expected.
        format: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A network or socket destination failed.
    #[error("{action} {address}: {error}")]
    Socket {
        /// What was done, such as `connecting to`.
        action: &'static str,
        /// The address, as given.
        address: String,
        /// The error.
        error: std::io::Error,
    },
}

impl Error {
    pub(crate) fn file(
        action: &'static str,
        path: impl Into<PathBuf>,
        error: std::io::Error,
    ) -> Error {
        Error::File {
            action,
            path: path.into(),
            error,
        }
    }

    pub(crate) fn sys(call: &'static str, source: impl Into<std::io::Error>) -> Error {
        Error::Sys {
            call,
            error: source.into(),
        }
    }
}
