//! What a driver receives: one record per line (or per piece of a long line).

use std::time::SystemTime;

/// Which of the container's output streams a record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    /// Standard output (fd 3 of the driver).
    Stdout,
    /// Standard error (fd 4 of the driver).
    Stderr,
}

impl Stream {
    /// The stream's name as Docker and the CRI log format write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }

    /// Parses `stdout` or `stderr`.
    pub fn parse(name: &str) -> Option<Stream> {
        match name {
            "stdout" => Some(Stream::Stdout),
            "stderr" => Some(Stream::Stderr),
            _ => None,
        }
    }
}

/// One record: a whole line without its newline, or a piece of one.
///
/// `partial` says the bytes are not followed by a newline: the record is one piece of a line
/// longer than the record limit (the next record of the same stream continues it), or the
/// output's last bytes, which ended without a newline. Appending a newline to every record
/// that is not partial gives back exactly the bytes the container wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// The stream.
    pub stream: Stream,
    /// When the driver read the bytes.
    pub time: SystemTime,
    /// The line's bytes, without the newline; any bytes, not necessarily UTF-8.
    pub bytes: &'a [u8],
    /// No newline follows these bytes.
    pub partial: bool,
}

/// A [`Record`] that owns its bytes (as queued in non-blocking mode).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedRecord {
    /// The stream.
    pub stream: Stream,
    /// When the driver read the bytes.
    pub time: SystemTime,
    /// The line's bytes, without the newline.
    pub bytes: Vec<u8>,
    /// No newline follows these bytes.
    pub partial: bool,
}

impl OwnedRecord {
    /// Borrows it as a [`Record`].
    pub fn as_record(&self) -> Record<'_> {
        Record {
            stream: self.stream,
            time: self.time,
            bytes: &self.bytes,
            partial: self.partial,
        }
    }
}

impl From<Record<'_>> for OwnedRecord {
    fn from(r: Record<'_>) -> OwnedRecord {
        OwnedRecord {
            stream: r.stream,
            time: r.time,
            bytes: r.bytes.to_vec(),
            partial: r.partial,
        }
    }
}
