//! Who waits for runc: the wrapper, or a caller that reaps every child itself.
//!
//! A shim is a subreaper and collects every exit with `waitpid(-1)`; if the wrapper also
//! waited on runc, one of them would lose the exit. A [`ProcessMonitor`] lets the caller start
//! the process and hand back the exit it collected.

use std::process::{Child, Command, ExitStatus};

use tokio::sync::oneshot;

/// Starts processes and reports their exits, for callers that own reaping.
///
/// The wrapper never waits on the returned [`Child`]; it only takes its standard I/O handles.
/// The monitor must send the exit status on `exit` exactly once, and must not lose an exit
/// that happens before it registered the pid (subscribe to exits before spawning).
pub trait ProcessMonitor: Send + Sync + 'static {
    /// Spawns `command` and returns it with the receiver of its exit status.
    fn start(&self, command: &mut Command) -> std::io::Result<Started>;
}

/// A process a [`ProcessMonitor`] started.
#[derive(Debug)]
pub struct Started {
    /// The spawned child: its pid and standard I/O handles. Never waited on by the wrapper.
    pub child: Child,
    /// Receives the process's exit status.
    pub exit: oneshot::Receiver<ExitStatus>,
}
