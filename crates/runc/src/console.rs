//! The console socket: where runc sends the master end of a container's terminal.

use std::io::IoSliceMut;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};

use crate::Error;

/// A listening unix socket to pass as `--console-socket`, in a private temporary folder
/// removed when this is dropped.
#[derive(Debug)]
pub struct ConsoleSocket {
    listener: UnixListener,
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl ConsoleSocket {
    /// Binds a new console socket.
    pub fn new() -> Result<ConsoleSocket, Error> {
        let dir = tempfile::Builder::new()
            .prefix("ctrd-console-")
            .tempdir()
            .map_err(|e| Error::setup("making the console socket's folder", e))?;
        let path = dir.path().join("console.sock");
        let listener = UnixListener::bind(&path)
            .map_err(|e| Error::setup(format!("binding {}", path.display()), e))?;
        Ok(ConsoleSocket {
            listener,
            path,
            _dir: dir,
        })
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Waits up to `timeout` for runc to connect and send the terminal's master fd.
    pub fn receive(&self, timeout: Duration) -> Result<OwnedFd, Error> {
        let fail = |context: &str, e: std::io::Error| Error::setup(context.to_owned(), e);
        let ms = u16::try_from(timeout.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(self.listener.as_fd(), PollFlags::POLLIN)];
        let ready = poll(&mut fds, PollTimeout::from(ms))
            .map_err(|e| fail("waiting on the console socket", e.into()))?;
        if ready == 0 {
            return Err(fail(
                "waiting on the console socket",
                std::io::Error::new(std::io::ErrorKind::TimedOut, "runc sent no terminal"),
            ));
        }
        let (stream, _) = self
            .listener
            .accept()
            .map_err(|e| fail("accepting on the console socket", e))?;
        let mut name = [0u8; 4096];
        let mut iov = [IoSliceMut::new(&mut name)];
        let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
        let msg = recvmsg::<()>(
            stream.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )
        .map_err(|e| fail("receiving the terminal", e.into()))?;
        let mut received = None;
        for cmsg in msg
            .cmsgs()
            .map_err(|e| fail("reading the terminal message", e.into()))?
        {
            if let ControlMessageOwned::ScmRights(fds) = cmsg {
                for fd in fds {
                    // SAFETY: the kernel just installed `fd` in this process for us
                    // (SCM_RIGHTS); nothing else owns it.
                    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
                    received.get_or_insert(owned);
                }
            }
        }
        received.ok_or_else(|| {
            fail(
                "receiving the terminal",
                std::io::Error::new(std::io::ErrorKind::InvalidData, "no fd in runc's message"),
            )
        })
    }
}
