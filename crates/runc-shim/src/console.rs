//! Terminals: the pty master runc hands over, copied to and from containerd's FIFOs, and
//! resized on `ResizePty`.
//!
//! The master fd has one owner, an `Arc` shared by the two copies and the resize call, so no
//! copy can close it under another (the defect of today's Rust shim, where three file objects
//! owned one fd).

use std::fs::OpenOptions;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::sync::Arc;

use nix::fcntl::{FcntlArg, OFlag, fcntl};
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A container process's terminal, as the shim holds it.
#[derive(Debug, Clone)]
pub struct Console {
    master: Arc<AsyncFd<OwnedFd>>,
}

/// How long runc may take to send the terminal after it started the process.
const RECEIVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

impl Console {
    /// Waits (on the blocking pool, not the serving thread) for the terminal runc sends to
    /// `socket`, then [`attach`](Console::attach)es it.
    pub async fn receive(
        socket: ctrd_runc::ConsoleSocket,
        stdin: &str,
        stdout: &str,
    ) -> std::io::Result<Console> {
        let master = tokio::task::spawn_blocking(move || socket.receive(RECEIVE_TIMEOUT))
            .await
            .map_err(std::io::Error::other)?
            .map_err(std::io::Error::other)?;
        Console::attach(master, stdin, stdout)
    }

    /// Takes the master and starts copying: `stdin` FIFO to the terminal, the terminal to
    /// the `stdout` FIFO (either may be empty). The copies end when the process's side of the
    /// terminal closes.
    pub fn attach(master: OwnedFd, stdin: &str, stdout: &str) -> std::io::Result<Console> {
        let flags = OFlag::from_bits_truncate(fcntl(&master, FcntlArg::F_GETFL)?);
        fcntl(&master, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
        // SAFETY: `master` is an open fd that the AsyncFd owns from here on; an OwnedFd always
        // returns the same fd from as_raw_fd and closes it only when dropped with the AsyncFd.
        let master = unsafe { AsyncFd::register(master) }.map_err(|e| e.into_parts().1)?;
        let master = Arc::new(master);
        if !stdout.is_empty() {
            let out = OpenOptions::new()
                .write(true)
                .custom_flags(OFlag::O_NONBLOCK.bits())
                .open(stdout)?;
            let mut out = tokio::net::unix::pipe::Sender::from_file(out)?;
            let master = master.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 32 * 1024];
                while let Ok(n) = read(&master, &mut buf).await {
                    if n == 0 || out.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
        if !stdin.is_empty() {
            let mut fifo = tokio::net::unix::pipe::OpenOptions::new().open_receiver(stdin)?;
            let master = master.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                while let Ok(n) = fifo.read(&mut buf).await {
                    if n == 0 || write_all(&master, &buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
        Ok(Console { master })
    }

    /// Sets the terminal's size.
    pub fn resize(&self, width: u32, height: u32) -> std::io::Result<()> {
        let size = nix::libc::winsize {
            ws_row: u16::try_from(height).unwrap_or(u16::MAX),
            ws_col: u16::try_from(width).unwrap_or(u16::MAX),
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads one `winsize` from the pointer, which outlives the call;
        // the fd is the open pty master this console owns.
        let rc = unsafe {
            nix::libc::ioctl(
                self.master.get_ref().as_raw_fd(),
                nix::libc::TIOCSWINSZ,
                &size,
            )
        };
        if rc < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }
}

async fn read(fd: &AsyncFd<OwnedFd>, buf: &mut [u8]) -> std::io::Result<usize> {
    loop {
        let mut guard = fd.readable().await?;
        match guard
            .try_io(|inner| nix::unistd::read(inner.get_ref(), buf).map_err(std::io::Error::from))
        {
            Ok(result) => return result,
            Err(_would_block) => continue,
        }
    }
}

async fn write_all(fd: &AsyncFd<OwnedFd>, mut buf: &[u8]) -> std::io::Result<()> {
    while !buf.is_empty() {
        let mut guard = fd.writable().await?;
        match guard
            .try_io(|inner| nix::unistd::write(inner.get_ref(), buf).map_err(std::io::Error::from))
        {
            Ok(Ok(n)) => buf = &buf[n..],
            Ok(Err(e)) => return Err(e),
            Err(_would_block) => continue,
        }
    }
    Ok(())
}
