//! The driver side of containerd's log driver protocol.
//!
//! A shim (containerd's Go shim, or ours) starts the driver named by a `binary://` or
//! `binary-v2://` URI with the container's stdout on fd 3, its stderr on fd 4, a readiness
//! pipe on fd 5, and `CONTAINER_ID` and `CONTAINER_NAMESPACE` as its whole environment. The
//! shim holds the container's start until fd 5 answers:
//!
//! - `binary://`: the shim reads one byte and takes either that byte or end of file as ready,
//!   so a driver that dies while starting looks ready too;
//! - `binary-v2://` (containerd 2.2): the shim needs the byte; end of file without it fails the
//!   container's start.
//!
//! The driver is not told which scheme started it (the environment and arguments are the
//! same), so it answers in the one way both accept: [`Ready::Byte`], one byte then close.
//! [`Ready::Close`] (option `ready=close`) closes without writing, for a shim that wants the
//! old behaviour exactly.

use std::fs::File;
use std::io::Write;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};

use nix::fcntl::{FcntlArg, FdFlag, fcntl};

use crate::Error;

/// The descriptor carrying the container's stdout.
pub const STDOUT_FD: RawFd = 3;
/// The descriptor carrying the container's stderr.
pub const STDERR_FD: RawFd = 4;
/// The readiness pipe.
pub const READY_FD: RawFd = 5;

/// How the driver tells the shim it is ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Ready {
    /// Write one byte to fd 5, then close it: what `binary-v2://` needs and `binary://` accepts.
    #[default]
    Byte,
    /// Close fd 5 without writing (`binary://` only).
    Close,
}

/// What the shim hands a driver: who it works for and the descriptors.
#[derive(Debug)]
pub struct Startup {
    /// The container's id (`CONTAINER_ID`).
    pub id: String,
    /// The container's namespace (`CONTAINER_NAMESPACE`).
    pub namespace: String,
    /// The container's stdout (fd 3) and stderr (fd 4), until taken.
    streams: Option<(OwnedFd, OwnedFd)>,
    /// The readiness pipe (fd 5), until [`Startup::ready`] answers on it.
    ready: Option<OwnedFd>,
}

static TAKEN: AtomicBool = AtomicBool::new(false);

impl Startup {
    /// Takes fds 3, 4 and 5 and reads the environment, as a shim sets them up.
    ///
    /// Fails, naming what is missing, when a descriptor is not open (the program was not
    /// started by a shim) or the fds were already taken.
    pub fn from_env() -> Result<Startup, Error> {
        for (fd, what) in [
            (STDOUT_FD, "the container's stdout"),
            (STDERR_FD, "the container's stderr"),
            (READY_FD, "the readiness pipe"),
        ] {
            if fcntl(borrow(fd), FcntlArg::F_GETFD).is_err() {
                return Err(Error::MissingFd { fd, what });
            }
        }
        let id = std::env::var("CONTAINER_ID").map_err(|_| Error::MissingEnv {
            var: "CONTAINER_ID",
        })?;
        let namespace = std::env::var("CONTAINER_NAMESPACE").map_err(|_| Error::MissingEnv {
            var: "CONTAINER_NAMESPACE",
        })?;
        if TAKEN.swap(true, Ordering::SeqCst) {
            return Err(Error::FdsTaken);
        }
        let take = |fd| {
            // SAFETY: the descriptor is open (checked above) and, guarded by TAKEN, this is
            // the only place in the process that takes ownership of it.
            let owned = unsafe { OwnedFd::from_raw_fd(fd) };
            // Our children (none today) must not keep the container's pipes open.
            let _ = fcntl(&owned, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC));
            owned
        };
        Ok(Startup {
            id,
            namespace,
            streams: Some((take(STDOUT_FD), take(STDERR_FD))),
            ready: Some(take(READY_FD)),
        })
    }

    /// A startup from descriptors the caller made (for tests and for embedding a driver).
    pub fn from_parts(
        id: impl Into<String>,
        namespace: impl Into<String>,
        stdout: OwnedFd,
        stderr: OwnedFd,
        ready: Option<OwnedFd>,
    ) -> Startup {
        Startup {
            id: id.into(),
            namespace: namespace.into(),
            streams: Some((stdout, stderr)),
            ready,
        }
    }

    /// Takes the container's stdout and stderr (fds 3 and 4), for [`run`](crate::run).
    pub fn take_streams(&mut self) -> Result<(OwnedFd, OwnedFd), Error> {
        self.streams.take().ok_or(Error::FdsTaken)
    }

    /// Tells the shim the driver is ready, and closes fd 5. Call it once the sink is open, so
    /// that a sink that cannot open fails the container's start under `binary-v2://`. Calling
    /// it again does nothing.
    pub fn ready(&mut self, how: Ready) -> Result<(), Error> {
        let Some(fd) = self.ready.take() else {
            return Ok(());
        };
        let mut pipe = File::from(fd);
        if how == Ready::Byte {
            pipe.write_all(&[1])
                .map_err(|source| Error::Ready { error: source })?;
        }
        Ok(())
    }
}

fn borrow(fd: RawFd) -> std::os::fd::BorrowedFd<'static> {
    // SAFETY: used only for F_GETFD, which tolerates a closed descriptor (EBADF) and does not
    // keep the borrow past the call.
    unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) }
}
