//! Task stdio: FIFOs the client makes (and removes), log files, logging binaries, or nothing.

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use nix::sys::stat::Mode;
use tokio::net::unix::pipe;

use crate::Error;

/// Where the client makes its FIFOs: one folder per process, removed with the process.
pub const FIFO_ROOT: &str = "/run/ctrd-client/fifo";

/// Where a process's stdio goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stdio {
    /// No stdio: `/dev/null` for all three.
    Null,
    /// FIFOs made by the client, handed back as pipes in [`Io`].
    Fifos {
        /// Whether the process gets a stdin pipe.
        stdin: bool,
        /// Whether the process runs on a terminal (one output pipe, no stderr).
        terminal: bool,
    },
    /// stdout and stderr appended to a file on the host (`file://`).
    File(PathBuf),
    /// stdout and stderr handed to a logging binary (`binary://`), with `key=value` arguments.
    Binary {
        /// The program.
        path: PathBuf,
        /// Its arguments, as query pairs.
        args: Vec<(String, String)>,
    },
}

impl Stdio {
    /// FIFOs for stdout and stderr, and stdin if `stdin`.
    pub fn fifos(stdin: bool) -> Stdio {
        Stdio::Fifos {
            stdin,
            terminal: false,
        }
    }

    /// A terminal: one FIFO for its output, one for input if `stdin`.
    pub fn terminal(stdin: bool) -> Stdio {
        Stdio::Fifos {
            stdin,
            terminal: true,
        }
    }

    /// Parses a log URI (`file:///path`, `binary:///path?k=v`), or a plain absolute path.
    pub fn from_log_uri(uri: &str) -> Result<Stdio, String> {
        if let Some(path) = uri.strip_prefix("file://") {
            Ok(Stdio::File(PathBuf::from(path)))
        } else if let Some(rest) = uri.strip_prefix("binary://") {
            let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
            if !path.starts_with('/') {
                return Err(format!(
                    "log URI {uri:?}: the logging binary's path {path:?} must be absolute \
                     (binary:///path/to/driver)"
                ));
            }
            let args = query
                .split('&')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once('=').unwrap_or((p, ""));
                    (query_unescape(k), query_unescape(v))
                })
                .collect();
            Ok(Stdio::Binary {
                path: PathBuf::from(path),
                args,
            })
        } else if uri.starts_with('/') {
            Ok(Stdio::File(PathBuf::from(uri)))
        } else {
            Err(format!(
                "log URI {uri:?}: use file:///path or binary:///path"
            ))
        }
    }

    /// Whether the process runs on a terminal.
    pub fn is_terminal(&self) -> bool {
        matches!(self, Stdio::Fifos { terminal: true, .. })
    }
}

/// The client's ends of a process's FIFOs.
#[derive(Debug, Default)]
pub struct Io {
    /// Write here to feed stdin; drop it (and call `close_stdin`) to send end of file.
    pub stdin: Option<pipe::Sender>,
    /// The process's stdout (or its terminal's output).
    pub stdout: Option<pipe::Receiver>,
    /// The process's stderr (none on a terminal).
    pub stderr: Option<pipe::Receiver>,
}

/// The paths containerd is given, and the FIFO folder to remove afterwards.
#[derive(Debug)]
pub(crate) struct Prepared {
    pub stdin: String,
    pub stdout: String,
    pub stderr: String,
    pub terminal: bool,
    pub fifos: Option<FifoDir>,
    pub io: Io,
}

/// A folder of FIFOs, removed when dropped.
#[derive(Debug)]
pub(crate) struct FifoDir {
    path: PathBuf,
}

impl Drop for FifoDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

fn fifo(dir: &Path, name: &str) -> Result<PathBuf, Error> {
    let path = dir.join(name);
    nix::unistd::mkfifo(&path, Mode::from_bits_truncate(0o600))
        .map_err(|e| Error::io(&path, std::io::Error::from(e)))?;
    Ok(path)
}

/// Makes what `stdio` needs for process `id` in `namespace`.
pub(crate) fn prepare(namespace: &str, id: &str, stdio: &Stdio) -> Result<Prepared, Error> {
    let mut prepared = Prepared {
        stdin: String::new(),
        stdout: String::new(),
        stderr: String::new(),
        terminal: stdio.is_terminal(),
        fifos: None,
        io: Io::default(),
    };
    match stdio {
        Stdio::Null => {}
        Stdio::File(path) => {
            if !path.is_absolute() {
                return Err(Error::Stdio {
                    id: id.to_owned(),
                    reason: format!("log file {} must be an absolute path", path.display()),
                });
            }
            let uri = format!("file://{}", path.display());
            prepared.stdout = uri.clone();
            prepared.stderr = uri;
        }
        Stdio::Binary { path, args } => {
            // containerd's shims run the driver from their own working folder: a relative
            // path would name a different program (or none) there.
            if !path.is_absolute() {
                return Err(Error::Stdio {
                    id: id.to_owned(),
                    reason: format!(
                        "logging binary {} must be an absolute path (binary:///path/to/driver)",
                        path.display()
                    ),
                });
            }
            // Each key and value is escaped, so none can end its pair or add another.
            let query: Vec<String> = args
                .iter()
                .map(|(k, v)| format!("{}={}", query_escape(k), query_escape(v)))
                .collect();
            let mut uri = format!("binary://{}", path.display());
            if !query.is_empty() {
                uri.push('?');
                uri.push_str(&query.join("&"));
            }
            prepared.stdout = uri.clone();
            prepared.stderr = uri;
        }
        Stdio::Fifos { stdin, terminal } => {
            let nanos = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos();
            if id.is_empty()
                || id == "."
                || id == ".."
                || id.contains('/')
                || id.chars().any(char::is_control)
            {
                return Err(Error::Stdio {
                    id: id.escape_debug().to_string(),
                    reason: "a process id for FIFOs must be a plain name (no '/', NUL or control \
                             character, not '.' or '..')"
                        .into(),
                });
            }
            let dir = Path::new(FIFO_ROOT).join(format!("{namespace}-{id}-{nanos}"));
            // Owner-only folders: other users can neither list nor open the FIFOs.
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)
                .map_err(|e| Error::io(&dir, e))?;
            let guard = FifoDir { path: dir.clone() };
            // Readers open without waiting for a writer; the shim connects its writers when
            // it creates the process, before anyone reads.
            let stdout = fifo(&dir, "stdout")?;
            prepared.io.stdout = Some(
                pipe::OpenOptions::new()
                    .open_receiver(&stdout)
                    .map_err(|e| Error::io(&stdout, e))?,
            );
            prepared.stdout = stdout.display().to_string();
            if !terminal {
                let stderr = fifo(&dir, "stderr")?;
                prepared.io.stderr = Some(
                    pipe::OpenOptions::new()
                        .open_receiver(&stderr)
                        .map_err(|e| Error::io(&stderr, e))?,
                );
                prepared.stderr = stderr.display().to_string();
            }
            if *stdin {
                let path = fifo(&dir, "stdin")?;
                // Read-write, so opening does not wait for the shim's reader.
                prepared.io.stdin = Some(
                    pipe::OpenOptions::new()
                        .read_write(true)
                        .open_sender(&path)
                        .map_err(|e| Error::io(&path, e))?,
                );
                prepared.stdin = path.display().to_string();
            }
            prepared.fifos = Some(guard);
        }
    }
    Ok(prepared)
}

/// `text` with every byte outside URI's unreserved set (letters, digits, `-._~`) and `/` as
/// `%XX`, for a `binary://` query.
fn query_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes the `%XX` escapes of a query key or value (others are kept as they are).
fn query_unescape(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied(),
            bytes.get(i + 2).copied(),
        ) {
            (b'%', Some(h), Some(l)) if hex(h).is_some() && hex(l).is_some() => {
                let value = hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0);
                out.push(u8::try_from(value).unwrap_or(b'?'));
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::{Stdio, prepare, query_escape, query_unescape};

    #[test]
    fn query_values_cannot_add_pairs_and_round_trip() {
        let value = "a&b=c?d%e /x";
        let escaped = query_escape(value);
        assert!(!escaped.contains(['&', '=', '?', ' ']), "{escaped}");
        assert_eq!(query_unescape(&escaped), value);
        let parsed = Stdio::from_log_uri("binary:///bin/d?path=%2Fvar%2Flog%2Fa.log&tag=x%26y")
            .expect("uri");
        let Stdio::Binary { args, .. } = parsed else {
            panic!("binary");
        };
        assert_eq!(
            args,
            vec![
                ("path".to_owned(), "/var/log/a.log".to_owned()),
                ("tag".to_owned(), "x&y".to_owned())
            ]
        );
    }

    #[test]
    fn relative_logging_binaries_are_refused() {
        for uri in [
            "binary://bin/driver",
            "binary://driver?path=/x",
            "binary://",
        ] {
            let error = Stdio::from_log_uri(uri).expect_err(uri);
            assert!(error.contains("must be absolute"), "{uri}: {error}");
        }
        let relative = Stdio::Binary {
            path: "bin/driver".into(),
            args: Vec::new(),
        };
        let error = prepare("default", "c1", &relative).expect_err("a relative binary");
        assert_eq!(
            error.to_string(),
            "stdio of c1: logging binary bin/driver must be an absolute path \
             (binary:///path/to/driver)"
        );
        let absolute = Stdio::Binary {
            path: "/usr/local/bin/driver".into(),
            args: vec![("path".into(), "/var/log/c1.log".into())],
        };
        let prepared = prepare("default", "c1", &absolute).expect("an absolute binary");
        assert_eq!(
            prepared.stdout,
            "binary:///usr/local/bin/driver?path=/var/log/c1.log"
        );
    }

    #[test]
    fn fifo_ids_that_would_leave_the_fifo_folder_are_refused() {
        for id in ["../../etc/x", "a/b", "..", "", "a\0b", "a\nb"] {
            let result = prepare("default", id, &Stdio::fifos(false));
            assert!(result.is_err(), "{id:?}");
        }
    }
}
