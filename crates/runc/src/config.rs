//! Global options: which runc, where its state lives, how it logs, how long it may take.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::monitor::ProcessMonitor;

/// The format of runc's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// logrus text lines.
    Text,
    /// One JSON object per line; errors are read back from it.
    Json,
}

/// Options shared by every command, and the handle the commands are called on.
///
/// Cloning is cheap. Build one with [`Runc::builder`]; the blocking commands are methods of
/// `Runc`, the async ones (feature `async`) methods of [`AsyncRunc`](crate::AsyncRunc), made
/// with [`Runc::to_async`].
#[derive(Clone)]
pub struct Runc {
    pub(crate) config: Arc<Config>,
}

impl std::fmt::Debug for Runc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runc")
            .field("binary", &self.config.binary)
            .field("root", &self.config.root)
            .field("timeout", &self.config.timeout)
            .finish_non_exhaustive()
    }
}

pub(crate) struct Config {
    pub binary: PathBuf,
    pub root: Option<PathBuf>,
    pub log: Option<PathBuf>,
    pub log_format: Option<LogFormat>,
    pub systemd_cgroup: bool,
    pub criu: Option<PathBuf>,
    pub rootless: Option<bool>,
    pub debug: bool,
    pub timeout: Option<Duration>,
    pub monitor: Option<Arc<dyn ProcessMonitor>>,
    pub parent_death_signal: Option<nix::sys::signal::Signal>,
}

impl Config {
    /// The global flags, in runc's order.
    pub fn global_args(&self) -> Vec<OsString> {
        let mut args = Vec::new();
        if let Some(root) = &self.root {
            args.push("--root".into());
            args.push(root.into());
        }
        if let Some(log) = &self.log {
            args.push("--log".into());
            args.push(log.into());
        }
        if let Some(format) = self.log_format {
            args.push("--log-format".into());
            args.push(
                match format {
                    LogFormat::Text => "text",
                    LogFormat::Json => "json",
                }
                .into(),
            );
        }
        if let Some(criu) = &self.criu {
            args.push("--criu".into());
            args.push(criu.into());
        }
        if self.systemd_cgroup {
            args.push("--systemd-cgroup".into());
        }
        if let Some(rootless) = self.rootless {
            args.push(format!("--rootless={rootless}").into());
        }
        if self.debug {
            args.push("--debug".into());
        }
        args
    }
}

impl Runc {
    /// A builder starting from runc's defaults (`runc` from `PATH`, its default root).
    pub fn builder() -> RuncBuilder {
        RuncBuilder {
            config: Config {
                binary: PathBuf::from("runc"),
                root: None,
                log: None,
                log_format: None,
                systemd_cgroup: false,
                criu: None,
                rootless: None,
                debug: false,
                timeout: None,
                monitor: None,
                parent_death_signal: None,
            },
        }
    }

    /// The binary this handle runs.
    pub fn binary(&self) -> &Path {
        &self.config.binary
    }

    /// The state root (`--root`), if set.
    pub fn root(&self) -> Option<&Path> {
        self.config.root.as_deref()
    }
}

impl Default for Runc {
    fn default() -> Self {
        Runc::builder().build()
    }
}

/// Builds a [`Runc`].
///
/// ```
/// use std::time::Duration;
/// use ctrd_runc::{LogFormat, Runc};
///
/// let runc = Runc::builder()
///     .binary("/usr/sbin/runc")
///     .root("/run/ctrd/runc/default")
///     .log("/run/ctrd/runc.log", LogFormat::Json)
///     .systemd_cgroup(false)
///     .timeout(Duration::from_secs(30))
///     .build();
/// assert_eq!(runc.binary(), std::path::Path::new("/usr/sbin/runc"));
/// ```
pub struct RuncBuilder {
    config: Config,
}

impl RuncBuilder {
    /// The runc binary: a path, or a name looked up in `PATH`.
    pub fn binary(mut self, binary: impl Into<PathBuf>) -> Self {
        self.config.binary = binary.into();
        self
    }

    /// runc's state root (`--root`).
    pub fn root(mut self, root: impl Into<PathBuf>) -> Self {
        self.config.root = Some(root.into());
        self
    }

    /// runc's log file and its format (`--log`, `--log-format`). With [`LogFormat::Json`],
    /// errors carry runc's own message read back from the log.
    pub fn log(mut self, log: impl Into<PathBuf>, format: LogFormat) -> Self {
        self.config.log = Some(log.into());
        self.config.log_format = Some(format);
        self
    }

    /// Manage cgroups through systemd (`--systemd-cgroup`).
    pub fn systemd_cgroup(mut self, on: bool) -> Self {
        self.config.systemd_cgroup = on;
        self
    }

    /// The CRIU binary for checkpoint and restore (`--criu`).
    pub fn criu(mut self, criu: impl Into<PathBuf>) -> Self {
        self.config.criu = Some(criu.into());
        self
    }

    /// Force rootless mode on or off (`--rootless`); unset lets runc decide.
    pub fn rootless(mut self, rootless: bool) -> Self {
        self.config.rootless = Some(rootless);
        self
    }

    /// runc's debug logging (`--debug`).
    pub fn debug(mut self, on: bool) -> Self {
        self.config.debug = on;
        self
    }

    /// Kill runc and fail with [`Error::Timeout`](crate::Error::Timeout) when a command
    /// takes longer than `timeout`. Foreground `run` and `exec`, which last as long as the
    /// container process, and the event stream are not limited.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.config.timeout = Some(timeout);
        self
    }

    /// Let `monitor` start runc and collect its exit, for callers that reap every child
    /// themselves (a shim's subreaper); see [`ProcessMonitor`].
    pub fn monitor(mut self, monitor: Arc<dyn ProcessMonitor>) -> Self {
        self.config.monitor = Some(monitor);
        self
    }

    /// Have the kernel send `signal` to each runc process when its parent dies
    /// (`PR_SET_PDEATHSIG`), as go-runc's `PdeathSignal`: a shim that is killed takes the runc
    /// commands it was running with it instead of leaving them behind. The kernel sends it
    /// when the *thread* that started runc ends, so start commands from threads that live as
    /// long as the process (a current-thread runtime, or a runtime's worker threads, not a
    /// blocking pool's threads, which end when idle).
    pub fn parent_death_signal(mut self, signal: nix::sys::signal::Signal) -> Self {
        self.config.parent_death_signal = Some(signal);
        self
    }

    /// The handle.
    pub fn build(self) -> Runc {
        Runc {
            config: Arc::new(self.config),
        }
    }
}
