//! The `journald` sink: systemd's native journal protocol over its unix datagram socket.
//!
//! Each record is one datagram of fields, `KEY=value\n`, or `KEY\n`, a little-endian 64-bit
//! length, the bytes and `\n` for a value that holds a newline or is not text. An entry too
//! large for a datagram goes, as journald expects, in a sealed memfd passed over the socket.
//! The fields are Docker's journald driver's: `MESSAGE`, `PRIORITY` (6 for stdout, 3 for
//! stderr), `CONTAINER_ID` (12 characters), `CONTAINER_ID_FULL`, `CONTAINER_NAME`,
//! `CONTAINER_TAG` and `SYSLOG_IDENTIFIER`, `CONTAINER_PARTIAL_MESSAGE=true` on a partial
//! record; and `CONTAINERD_NAMESPACE`.

use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;

use nix::fcntl::{FcntlArg, SealFlag, fcntl};
use nix::sys::memfd::{MFdFlags, memfd_create};
use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};

use crate::options::Options;
use crate::record::Stream;
use crate::sinks::Labels;
use crate::{Driver, Error, Record};

/// Where journald listens.
pub const DEFAULT_SOCKET: &str = "/run/systemd/journal/socket";

/// The journald sink's options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournaldOptions {
    /// The socket (`journald-socket`, default [`DEFAULT_SOCKET`]).
    pub socket: PathBuf,
    /// `CONTAINER_NAME` (`name`, default the container id).
    pub name: Option<String>,
    /// `SYSLOG_IDENTIFIER` and `CONTAINER_TAG` (`tag`, default the container id's first 12
    /// characters, as Docker).
    pub tag: Option<String>,
}

impl JournaldOptions {
    /// Reads `journald-socket`, `name` and `tag`.
    pub fn from_options(options: &mut Options) -> Result<JournaldOptions, Error> {
        Ok(JournaldOptions {
            socket: options
                .string("journald-socket")
                .map_or_else(|| PathBuf::from(DEFAULT_SOCKET), PathBuf::from),
            name: options.string("name"),
            tag: options.string("tag"),
        })
    }
}

/// A journald sink.
#[derive(Debug)]
pub struct Journald {
    socket: UnixDatagram,
    address: PathBuf,
    /// The fields every entry carries, encoded once.
    fixed: Vec<u8>,
    entry: Vec<u8>,
}

impl Journald {
    /// Connects to journald's socket.
    pub fn open(options: JournaldOptions, labels: &Labels) -> Result<Journald, Error> {
        let socket = UnixDatagram::unbound().map_err(|source| Error::Socket {
            action: "making a socket for",
            address: options.socket.display().to_string(),
            error: source,
        })?;
        socket
            .connect(&options.socket)
            .map_err(|source| Error::Socket {
                action: "connecting to journald at",
                address: options.socket.display().to_string(),
                error: source,
            })?;
        let short: String = labels.id.chars().take(12).collect();
        let name = options.name.unwrap_or_else(|| labels.id.clone());
        let tag = options.tag.unwrap_or_else(|| short.clone());
        let mut fixed = Vec::new();
        for (key, value) in [
            ("CONTAINER_ID", short.as_str()),
            ("CONTAINER_ID_FULL", labels.id.as_str()),
            ("CONTAINER_NAME", name.as_str()),
            ("CONTAINER_TAG", tag.as_str()),
            ("SYSLOG_IDENTIFIER", tag.as_str()),
            ("CONTAINERD_NAMESPACE", labels.namespace.as_str()),
        ] {
            field(key, value.as_bytes(), &mut fixed);
        }
        Ok(Journald {
            socket,
            address: options.socket,
            fixed,
            entry: Vec::with_capacity(1024),
        })
    }

    fn send(&self) -> Result<(), Error> {
        match self.socket.send(&self.entry) {
            Ok(_) => Ok(()),
            Err(e) if too_large(&e) => self.send_memfd(),
            Err(source) => Err(Error::Socket {
                action: "sending to journald at",
                address: self.address.display().to_string(),
                error: source,
            }),
        }
    }

    /// Sends the entry in a sealed memfd, for entries larger than a datagram.
    fn send_memfd(&self) -> Result<(), Error> {
        let failed = |source: std::io::Error| Error::Socket {
            action: "sending a large entry (memfd) to journald at",
            address: self.address.display().to_string(),
            error: source,
        };
        let fd = memfd_create(
            c"ctrd-journal-entry",
            MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING,
        )
        .map_err(|e| failed(e.into()))?;
        let mut file = File::from(fd);
        file.write_all(&self.entry).map_err(failed)?;
        fcntl(
            &file,
            FcntlArg::F_ADD_SEALS(
                SealFlag::F_SEAL_SHRINK
                    | SealFlag::F_SEAL_GROW
                    | SealFlag::F_SEAL_WRITE
                    | SealFlag::F_SEAL_SEAL,
            ),
        )
        .map_err(|e| failed(e.into()))?;
        let fds = [file.as_raw_fd()];
        sendmsg::<()>(
            self.socket.as_raw_fd(),
            &[],
            &[ControlMessage::ScmRights(&fds)],
            MsgFlags::empty(),
            None,
        )
        .map_err(|e| failed(e.into()))?;
        Ok(())
    }
}

impl Driver for Journald {
    fn write(&mut self, record: &Record<'_>) -> Result<(), Error> {
        self.entry.clear();
        field("MESSAGE", record.bytes, &mut self.entry);
        self.entry.extend_from_slice(match record.stream {
            Stream::Stdout => b"PRIORITY=6\n",
            Stream::Stderr => b"PRIORITY=3\n",
        });
        if record.partial {
            self.entry
                .extend_from_slice(b"CONTAINER_PARTIAL_MESSAGE=true\n");
        }
        self.entry.extend_from_slice(&self.fixed);
        self.send()
    }
}

/// Whether a send failed because the datagram is too large for the socket.
fn too_large(e: &std::io::Error) -> bool {
    let code = e.raw_os_error();
    code == Some(nix::errno::Errno::EMSGSIZE as i32)
        || code == Some(nix::errno::Errno::ENOBUFS as i32)
}

/// Appends one field in the native protocol's encoding.
pub fn field(key: &str, value: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(key.as_bytes());
    if value.contains(&b'\n') {
        out.push(b'\n');
        out.extend_from_slice(&(value.len() as u64).to_le_bytes());
        out.extend_from_slice(value);
    } else {
        out.push(b'=');
        out.extend_from_slice(value);
    }
    out.push(b'\n');
}
