//! Standard I/O of container processes: pipes, FIFOs, existing fds, inherited or null.
//!
//! For a process without a terminal, runc hands its own standard streams to the container
//! process, so what is set here is what the container reads and writes. Every fd has exactly
//! one owner: the container-side ends move into the runc command (and are closed in this
//! process once runc is started); the caller keeps the other ends in [`Pipes`].

use std::fs::OpenOptions;
use std::io::{PipeReader, PipeWriter};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::unistd::{Gid, Uid, fchown};

use crate::Error;

/// Where one standard stream of the container process goes.
#[derive(Debug, Default)]
enum Slot {
    /// This process's own stream.
    Inherit,
    /// `/dev/null`.
    #[default]
    Null,
    /// An fd the container process gets.
    Fd(OwnedFd),
}

impl Slot {
    fn into_stdio(self) -> Stdio {
        match self {
            Slot::Inherit => Stdio::inherit(),
            Slot::Null => Stdio::null(),
            Slot::Fd(fd) => Stdio::from(fd),
        }
    }
}

/// The standard streams a container process gets.
#[derive(Debug, Default)]
pub struct ProcessIo {
    stdin: Slot,
    stdout: Slot,
    stderr: Slot,
}

/// Which pipes [`ProcessIo::pipes`] makes, and who owns their container ends.
#[derive(Debug, Clone, Copy, Default)]
pub struct PipeSpec {
    /// Make a stdin pipe (the caller writes).
    pub stdin: bool,
    /// Make a stdout pipe (the caller reads).
    pub stdout: bool,
    /// Make a separate stderr pipe (the caller reads).
    pub stderr: bool,
    /// Give the container ends to this uid and gid, so a non-root container process can
    /// reopen them through `/proc/self/fd`.
    pub owner: Option<(u32, u32)>,
}

/// The caller's ends of the pipes made by [`ProcessIo::pipes`].
#[derive(Debug, Default)]
pub struct Pipes {
    /// Write here to feed the container's stdin; drop it to close the container's stdin.
    pub stdin: Option<PipeWriter>,
    /// The container's stdout.
    pub stdout: Option<PipeReader>,
    /// The container's stderr.
    pub stderr: Option<PipeReader>,
}

impl ProcessIo {
    /// All three streams to `/dev/null`.
    pub fn null() -> ProcessIo {
        ProcessIo::default()
    }

    /// All three streams shared with this process.
    pub fn inherit() -> ProcessIo {
        ProcessIo {
            stdin: Slot::Inherit,
            stdout: Slot::Inherit,
            stderr: Slot::Inherit,
        }
    }

    /// The given fds; a `None` stream goes to `/dev/null`.
    pub fn from_fds(
        stdin: Option<OwnedFd>,
        stdout: Option<OwnedFd>,
        stderr: Option<OwnedFd>,
    ) -> ProcessIo {
        let slot = |fd: Option<OwnedFd>| fd.map_or(Slot::Null, Slot::Fd);
        ProcessIo {
            stdin: slot(stdin),
            stdout: slot(stdout),
            stderr: slot(stderr),
        }
    }

    /// New pipes for the streams `spec` asks for (the others go to `/dev/null`).
    pub fn pipes(spec: PipeSpec) -> Result<(ProcessIo, Pipes), Error> {
        let mut io = ProcessIo::null();
        let mut pipes = Pipes::default();
        let owner = spec.owner;
        let chown = |fd: &OwnedFd| -> Result<(), Error> {
            if let Some((uid, gid)) = owner {
                fchown(
                    fd.as_fd(),
                    Some(Uid::from_raw(uid)),
                    Some(Gid::from_raw(gid)),
                )
                .map_err(|e| Error::setup("giving a pipe to the container's user", e.into()))?;
            }
            Ok(())
        };
        let pipe = || std::io::pipe().map_err(|e| Error::setup("making a pipe", e));
        if spec.stdin {
            let (reader, writer) = pipe()?;
            let fd = OwnedFd::from(reader);
            chown(&fd)?;
            io.stdin = Slot::Fd(fd);
            pipes.stdin = Some(writer);
        }
        if spec.stdout {
            let (reader, writer) = pipe()?;
            let fd = OwnedFd::from(writer);
            chown(&fd)?;
            io.stdout = Slot::Fd(fd);
            pipes.stdout = Some(reader);
        }
        if spec.stderr {
            let (reader, writer) = pipe()?;
            let fd = OwnedFd::from(writer);
            chown(&fd)?;
            io.stderr = Slot::Fd(fd);
            pipes.stderr = Some(reader);
        }
        Ok((io, pipes))
    }

    /// Opens FIFOs at the given paths (a `None` stream goes to `/dev/null`).
    ///
    /// The stdin FIFO is opened for reading without waiting for a writer; the stdout and
    /// stderr FIFOs must already have a reader, as containerd's are before it creates a task.
    pub fn fifos(
        stdin: Option<&Path>,
        stdout: Option<&Path>,
        stderr: Option<&Path>,
    ) -> Result<ProcessIo, Error> {
        let stdin = stdin.map(|p| open_fifo(p, false)).transpose()?;
        let stdout = stdout.map(|p| open_fifo(p, true)).transpose()?;
        let stderr = stderr.map(|p| open_fifo(p, true)).transpose()?;
        Ok(ProcessIo::from_fds(stdin, stdout, stderr))
    }

    /// Sets the command's standard streams, moving the fds into it.
    pub(crate) fn apply(self, command: &mut Command) {
        command
            .stdin(self.stdin.into_stdio())
            .stdout(self.stdout.into_stdio())
            .stderr(self.stderr.into_stdio());
    }
}

/// Opens a FIFO without blocking, then makes the fd blocking for the container.
fn open_fifo(path: &Path, write: bool) -> Result<OwnedFd, Error> {
    let file = OpenOptions::new()
        .read(!write)
        .write(write)
        .custom_flags(libc_nonblock())
        .open(path)
        .map_err(|e| {
            let context = if write && e.raw_os_error() == Some(nix::libc::ENXIO) {
                format!("FIFO {} has no reader", path.display())
            } else {
                format!("opening FIFO {}", path.display())
            };
            Error::setup(context, e)
        })?;
    let fd = OwnedFd::from(file);
    let flags = fcntl(&fd, FcntlArg::F_GETFL)
        .map_err(|e| Error::setup(format!("FIFO {}", path.display()), e.into()))?;
    let flags = OFlag::from_bits_truncate(flags) & !OFlag::O_NONBLOCK;
    fcntl(&fd, FcntlArg::F_SETFL(flags))
        .map_err(|e| Error::setup(format!("FIFO {}", path.display()), e.into()))?;
    Ok(fd)
}

fn libc_nonblock() -> i32 {
    OFlag::O_NONBLOCK.bits()
}
