//! A typed wrapper of the `runc` command line, for shims and other runtimes built on runc.
//!
//! - [`Runc::builder`] sets the global options (binary, `--root`, `--log` and its format,
//!   `--systemd-cgroup`, `--rootless`, `--criu`, `--debug`) and a timeout that kills runc.
//! - Every command is a method with typed options and results: `create`, `start`, `run`,
//!   `exec` (the process spec travels in an in-memory file), `kill`, `delete`, `state`, `list`,
//!   `ps`, `pause`, `resume`, `update`, `stats` and the `events` stream, `checkpoint`,
//!   `restore`, `features` and `version`. Blocking methods are on [`Runc`]; with the `async`
//!   feature, the same commands are on [`AsyncRunc`]. Both share one core (argument building,
//!   output parsing, error reading), so they cannot drift apart.
//! - [`ProcessIo`] gives container processes pipes, FIFOs, existing fds, `/dev/null` or this
//!   process's streams, each fd owned exactly once; [`ConsoleSocket`] receives a terminal.
//! - A [`ProcessMonitor`] lets a caller that reaps every child (a subreaper shim) spawn runc
//!   and report its exit, so the wrapper never races the caller's reaper.
//! - With the `async` feature, a caller's deadline ([`deadline::with_deadline`], as a shim
//!   takes it from a ttrpc request) limits every command awaited within it: a hanging runc is
//!   killed when it passes, and a future dropped before runc finished kills it too.
//! - Errors name the command, the exit status and runc's own message, read from its JSON log
//!   when one is configured (or a private one for commands whose stderr goes to a container).
//!
//! ```no_run
//! use ctrd_runc::{CreateOptions, PipeSpec, ProcessIo, Runc};
//! use std::io::Read;
//!
//! let runc = Runc::builder().root("/run/my-shim/runc").build();
//! let (io, mut pipes) = ProcessIo::pipes(PipeSpec { stdout: true, stderr: true, ..Default::default() })?;
//! let pid = runc.create("c1", "/path/to/bundle".as_ref(), CreateOptions { io: Some(io), ..Default::default() })?;
//! runc.start("c1")?;
//! let mut out = String::new();
//! pipes.stdout.take().expect("stdout pipe").read_to_string(&mut out)?;
//! println!("{pid} printed {out}");
//! runc.delete("c1", true)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#[cfg(feature = "async")]
mod asynchronous;
mod blocking;
mod config;
mod console;
#[cfg(feature = "async")]
pub mod deadline;
mod error;
mod events;
#[doc(hidden)]
pub mod fuzzing;
mod id;
mod io;
mod kill_handle;
mod monitor;
mod opts;
mod plan;
mod types;

#[cfg(feature = "async")]
pub use asynchronous::{AsyncEventStream, AsyncRunc};
pub use config::{LogFormat, Runc, RuncBuilder};
pub use console::ConsoleSocket;
pub use error::{Error, Result};
pub use events::EventStream;
pub use id::validate as validate_id;
pub use io::{PipeSpec, Pipes, ProcessIo};
pub use monitor::{ProcessMonitor, Started};
pub use opts::{CheckpointOptions, CreateOptions, CriuOptions, ExecOptions, RestoreOptions};
pub use types::{
    Blkio, BlkioEntry, Cpu, CpuUsage, Event, Features, Hugetlb, LinuxFeatures, Memory, MemoryEntry,
    Pids, State, Stats, Status, Throttling, Version,
};

/// The OCI runtime spec types the commands take (`Process` for `exec`, `LinuxResources` for
/// `update`), re-exported so callers use the same version.
pub use oci_spec::runtime as spec;
