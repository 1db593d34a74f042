//! A process's standard I/O as containerd describes it: FIFO paths, `file://` URIs,
//! `binary://` and `binary-v2://` log drivers, or nothing.
//!
//! Output goes straight to its destination (the FIFO or file is the container's stdout fd), so
//! the shim copies nothing. Stdin goes through a pipe the shim feeds from the FIFO, so that
//! `CloseIO` can end it; the copy runs on the shim's runtime and never holds up shutdown.

use std::fs::OpenOptions;
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use ctrd_runc::ProcessIo;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::unistd::{Gid, Uid, fchown};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;

/// Pipe buffer size asked for on output FIFOs.
const PIPE_SIZE: i32 = 1 << 20;

/// The stdio containerd asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stdio {
    /// Stdin FIFO, or empty.
    pub stdin: String,
    /// Stdout FIFO or `file://` URI, or empty.
    pub stdout: String,
    /// Stderr FIFO or `file://` URI, or empty.
    pub stderr: String,
    /// Whether the process has a terminal.
    pub terminal: bool,
}

/// What the shim holds of a process's stdio.
#[derive(Debug, Default)]
pub struct StdioHandles {
    /// Ends the stdin copy (after delivering what the client already wrote).
    close_stdin: Option<oneshot::Sender<()>>,
    /// Read ends kept on output FIFOs, so a container never writes into a FIFO nobody holds
    /// (which would kill it with SIGPIPE) while its client is away.
    _keep: Vec<OwnedFd>,
}

impl StdioHandles {
    /// Closes the process's stdin once what the client wrote is delivered (`CloseIO`).
    pub fn close_stdin(&mut self) {
        if let Some(tx) = self.close_stdin.take() {
            let _ = tx.send(());
        }
    }
}

/// Why stdio could not be set up.
#[derive(Debug)]
pub struct StdioError(pub String);

fn err(what: impl std::fmt::Display, e: impl std::fmt::Display) -> StdioError {
    StdioError(format!("{what}: {e}"))
}

/// Opens what `stdio` names; `owner` (io_uid, io_gid) gets the stdin pipe.
///
/// A process with a terminal gets `/dev/null` here: its stdio is the terminal, attached with
/// [`Console`](crate::console::Console) once runc hands the master over.
pub async fn open(
    stdio: &Stdio,
    owner: Option<(u32, u32)>,
    driver: &LogDriverContext<'_>,
) -> Result<(ProcessIo, StdioHandles), StdioError> {
    if stdio.terminal {
        return Ok((ProcessIo::null(), StdioHandles::default()));
    }
    let mut handles = StdioHandles::default();
    let driven = match stdio.stdout.strip_prefix("binary://") {
        Some(uri) => Some((uri, Readiness::ByteOrEof)),
        None => stdio
            .stdout
            .strip_prefix("binary-v2://")
            .map(|uri| (uri, Readiness::Byte)),
    };
    if let Some((uri, readiness)) = driven {
        let (stdout, stderr) = log_driver(uri, readiness, driver).await?;
        let stdin = if stdio.stdin.is_empty() {
            None
        } else {
            Some(stdin(&stdio.stdin, owner, &mut handles)?)
        };
        return Ok((
            ProcessIo::from_fds(stdin, Some(stdout), Some(stderr)),
            handles,
        ));
    }
    let stdout = output(&stdio.stdout, &mut handles)?;
    let stderr = if !stdio.stderr.is_empty() && stdio.stderr == stdio.stdout {
        stdout
            .as_ref()
            .map(|fd| fd.try_clone().map_err(|e| err("duplicating stdout", e)))
            .transpose()?
    } else {
        output(&stdio.stderr, &mut handles)?
    };
    let stdin = if stdio.stdin.is_empty() {
        None
    } else {
        Some(stdin(&stdio.stdin, owner, &mut handles)?)
    };
    Ok((ProcessIo::from_fds(stdin, stdout, stderr), handles))
}

fn output(target: &str, handles: &mut StdioHandles) -> Result<Option<OwnedFd>, StdioError> {
    if target.is_empty() {
        return Ok(None);
    }
    if let Some(path) = target.strip_prefix("file://") {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o640)
            .open(path)
            .map_err(|e| err(format!("opening log file {path}"), e))?;
        return Ok(Some(file.into()));
    }
    if target.contains("://") {
        return Err(StdioError(format!("unsupported stdio URI {target}")));
    }
    // Our own read end first: then the write end opens without waiting, and the FIFO keeps a
    // reader for as long as the shim lives.
    let keep = open_nonblocking(Path::new(target), false)?;
    let fd = open_nonblocking(Path::new(target), true)?;
    set_blocking(&fd).map_err(|e| err(format!("FIFO {target}"), e))?;
    // A larger pipe buffer lets a busy writer and its reader switch less often; best effort
    // (the kernel caps it at /proc/sys/fs/pipe-max-size).
    let _ = fcntl(&fd, FcntlArg::F_SETPIPE_SZ(PIPE_SIZE));
    handles._keep.push(keep);
    Ok(Some(fd))
}

fn stdin(
    path: &str,
    owner: Option<(u32, u32)>,
    handles: &mut StdioHandles,
) -> Result<OwnedFd, StdioError> {
    let (pipe_reader, pipe_writer) =
        std::io::pipe().map_err(|e| err("making the stdin pipe", e))?;
    let pipe_reader = OwnedFd::from(pipe_reader);
    if let Some((uid, gid)) = owner {
        fchown(
            &pipe_reader,
            Some(Uid::from_raw(uid)),
            Some(Gid::from_raw(gid)),
        )
        .map_err(|e| err("giving stdin to the container's user", e))?;
    }
    // Opened for reading without waiting for a writer. Until the client's writer connects,
    // the kernel reports no readiness on the FIFO (no EOF either), so the copy simply waits;
    // once that writer closes, the copy reads EOF and closes the container's stdin.
    let mut fifo = tokio::net::unix::pipe::OpenOptions::new()
        .open_receiver(path)
        .map_err(|e| err(format!("opening stdin FIFO {path}"), e))?;
    let mut pipe = tokio::net::unix::pipe::Sender::from_owned_fd(OwnedFd::from(pipe_writer))
        .map_err(|e| err("stdin pipe", e))?;
    let (close_tx, mut close_rx) = oneshot::channel::<()>();
    handles.close_stdin = Some(close_tx);
    tokio::spawn(async move {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            tokio::select! {
                read = fifo.read(&mut buf) => match read {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if pipe.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                },
                _ = &mut close_rx => {
                    // CloseIO: deliver what the client already wrote, then close.
                    while let Ok(n) = fifo.try_read(&mut buf) {
                        if n == 0 || pipe.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                    break;
                }
            }
        }
    });
    Ok(pipe_reader)
}

/// Who a log driver works for.
pub struct LogDriverContext<'a> {
    /// The container id (`CONTAINER_ID`).
    pub id: &'a str,
    /// The namespace (`CONTAINER_NAMESPACE`).
    pub namespace: &'a str,
    /// Reaps the driver when it exits.
    pub reaper: &'a ctrd_shim::Reaper,
}

/// What a log driver's readiness pipe must show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Readiness {
    /// `binary://`: one byte, or end of file (unless the driver has already failed).
    ByteOrEof,
    /// `binary-v2://` (containerd 2.2): one byte; end of file without it fails.
    Byte,
}

/// How long a driver has to get ready.
const DRIVER_READY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Under `binary://`, how long after end of file on fd 5 a driver that exits counts as failed
/// (a driver that only closes fd 5 pays this once per start; ours writes the byte).
const EXIT_GRACE_BINARY: std::time::Duration = std::time::Duration::from_millis(100);

/// Under `binary-v2://`, how long a driver that closed fd 5 without the byte has to exit (and
/// so to finish writing its reason) before it is killed.
const EXIT_GRACE_BINARY_V2: std::time::Duration = std::time::Duration::from_secs(2);

/// The most of a failed driver's stderr quoted in the error.
const DRIVER_STDERR_QUOTE: usize = 4096;

/// Starts a `binary://` or `binary-v2://` log driver as containerd defines them: the binary at
/// the URI's path, each query pair as two arguments (the value even when empty, as Go's
/// shim passes it), `CONTAINER_ID` and `CONTAINER_NAMESPACE` as its whole environment, the
/// container's stdout and stderr on fds 3 and 4, and fd 5 to write its ready byte to (or,
/// under `binary://`, close). Returns the write ends the container gets.
///
/// A driver that fails to get ready is killed if it still runs, and Create fails with its
/// exit status and what it wrote to stderr. Under `binary://` end of file on fd 5 means ready,
/// as in containerd, unless the driver has already exited with a failure by then. After it is
/// ready, the driver's stderr goes to the shim's log.
async fn log_driver(
    uri: &str,
    readiness: Readiness,
    ctx: &LogDriverContext<'_>,
) -> Result<(OwnedFd, OwnedFd), StdioError> {
    use command_fds::{CommandFdExt, FdMapping};
    use tokio::io::AsyncReadExt;

    let (path, args) = driver_command(uri);
    let mut command = std::process::Command::new(&path);
    command.args(args);
    let (out_r, out_w) = std::io::pipe().map_err(|e| err("making the stdout pipe", e))?;
    let (err_r, err_w) = std::io::pipe().map_err(|e| err("making the stderr pipe", e))?;
    let (ready_r, ready_w) = std::io::pipe().map_err(|e| err("making the ready pipe", e))?;
    let (diag_r, diag_w) =
        std::io::pipe().map_err(|e| err("making the log driver's stderr pipe", e))?;
    // A process group of its own, so that a driver that fails to start goes with every
    // process it started (a script's children included).
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    command
        .env_clear()
        .env("CONTAINER_ID", ctx.id)
        .env("CONTAINER_NAMESPACE", ctx.namespace)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::from(diag_w))
        .fd_mappings(vec![
            FdMapping {
                parent_fd: out_r.into(),
                child_fd: 3,
            },
            FdMapping {
                parent_fd: err_r.into(),
                child_fd: 4,
            },
            FdMapping {
                parent_fd: ready_w.into(),
                child_fd: 5,
            },
        ])
        .map_err(|e| err("passing fds to the log driver", e))?;
    let (child, mut exit) = ctx
        .reaper
        .spawn(&mut command)
        .map_err(|e| err(format!("starting log driver {path}"), e))?;
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    // Our copies of the driver's ends close with the command.
    drop(command);
    drop(child);
    let stderr = tokio::spawn(driver_stderr(path.clone(), OwnedFd::from(diag_r)));
    let mut ready = tokio::net::unix::pipe::Receiver::from_owned_fd(OwnedFd::from(ready_r))
        .map_err(|e| err("log driver ready pipe", e))?;
    let mut byte = [0u8; 1];
    // The driver's exit, once seen (`Some(None)`: it is gone, status unknown).
    let mut exited: Option<Option<std::process::ExitStatus>> = None;
    let failure = match tokio::time::timeout(DRIVER_READY_TIMEOUT, ready.read(&mut byte)).await {
        Ok(Ok(1)) => return Ok((out_w.into(), err_w.into())),
        Ok(Ok(_)) if readiness == Readiness::ByteOrEof => {
            // The driver closed fd 5: ready, unless it closed it by failing.
            match tokio::time::timeout(EXIT_GRACE_BINARY, &mut exit).await {
                Ok(Ok(status)) if !status.success() => {
                    exited = Some(Some(status));
                    "exited before it was ready".to_owned()
                }
                _ => return Ok((out_w.into(), err_w.into())),
            }
        }
        Ok(Ok(_)) => {
            // Not ready: most likely exiting with an error; give it time to say why.
            if let Ok(status) = tokio::time::timeout(EXIT_GRACE_BINARY_V2, &mut exit).await {
                exited = Some(status.ok());
            }
            "closed fd 5 without writing the ready byte binary-v2:// needs".to_owned()
        }
        Ok(Err(e)) => format!("could not be waited for ({e})"),
        Err(_) => format!(
            "did not get ready within {} s",
            DRIVER_READY_TIMEOUT.as_secs()
        ),
    };
    // Failed: make sure it is gone (killing it only while it has not been reaped, so the pid
    // is still its own), then quote its exit status and stderr.
    let status = match exited {
        Some(status) => status,
        None => match exit.try_recv() {
            Ok(status) => Some(status),
            Err(tokio::sync::oneshot::error::TryRecvError::Closed) => None,
            Err(tokio::sync::oneshot::error::TryRecvError::Empty) => {
                let _ = nix::sys::signal::killpg(pid, nix::sys::signal::Signal::SIGKILL);
                tokio::time::timeout(std::time::Duration::from_secs(2), exit)
                    .await
                    .ok()
                    .and_then(Result::ok)
            }
        },
    };
    let said = tokio::time::timeout(std::time::Duration::from_secs(1), stderr)
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    let mut message = format!("log driver {path} {failure}");
    if let Some(status) = status {
        message.push_str(&format!(" ({status})"));
    }
    let said = said.trim();
    if !said.is_empty() {
        message.push_str(": ");
        message.push_str(said);
    }
    Err(StdioError(message))
}

/// Reads a log driver's stderr until it closes: every line goes to the shim's log, and the
/// first few KiB come back (for the error when the driver fails to start).
async fn driver_stderr(path: String, fd: OwnedFd) -> String {
    use tokio::io::AsyncBufReadExt;
    let Ok(pipe) = tokio::net::unix::pipe::Receiver::from_owned_fd(fd) else {
        return String::new();
    };
    let mut lines = tokio::io::BufReader::new(pipe).split(b'\n');
    let mut quoted = String::new();
    while let Ok(Some(line)) = lines.next_segment().await {
        let line = String::from_utf8_lossy(&line);
        tracing::warn!(driver = %path, "log driver: {line}");
        if quoted.len() < DRIVER_STDERR_QUOTE {
            if !quoted.is_empty() {
                quoted.push('\n');
            }
            quoted.push_str(&line);
        }
    }
    quoted
}

/// The program and arguments of a `binary://` URI (after the scheme): the decoded path, then
/// each query pair as `key value`, as containerd passes them.
pub(crate) fn driver_command(uri: &str) -> (String, Vec<String>) {
    let (path, query) = uri.split_once('?').unwrap_or((uri, ""));
    let mut args = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        args.push(percent_decode(k));
        args.push(percent_decode(v));
    }
    (percent_decode(path), args)
}

/// Decodes `%XX` escapes of a URI component.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn open_nonblocking(path: &Path, write: bool) -> Result<OwnedFd, StdioError> {
    OpenOptions::new()
        .read(!write)
        .write(write)
        .custom_flags(OFlag::O_NONBLOCK.bits())
        .open(path)
        .map(OwnedFd::from)
        .map_err(|e| err(format!("opening FIFO {}", path.display()), e))
}

fn set_blocking(fd: &OwnedFd) -> nix::Result<()> {
    let flags = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL)?);
    fcntl(fd, FcntlArg::F_SETFL(flags & !OFlag::O_NONBLOCK)).map(drop)
}

#[cfg(test)]
mod tests {
    use super::percent_decode;

    #[test]
    fn uri_components_decode() {
        assert_eq!(
            percent_decode("/usr/bin/log%20driver"),
            "/usr/bin/log driver"
        );
        assert_eq!(percent_decode("a%2Fb%zz%"), "a/b%zz%");
    }
}
