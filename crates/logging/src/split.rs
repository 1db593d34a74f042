//! Line splitting that never loses or reorders a byte.
//!
//! A [`Splitter`] turns one stream's bytes, in whatever chunks `read` returns them, into
//! [`Record`]s: one per line, without the newline. A line longer than the record limit
//! ([`MAX_RECORD`] by default, Docker's and containerd's 16 KiB) becomes pieces of exactly the
//! limit, marked partial, then the rest. Bytes left without a newline when the stream ends
//! come out, marked partial, from [`Splitter::finish`]. The records do not depend on how the
//! input was chunked.

use std::time::SystemTime;

use crate::record::{Record, Stream};

/// The longest record, in bytes: 16 KiB, as Docker and containerd's CRI logger split lines.
pub const MAX_RECORD: usize = 16 * 1024;

/// Splits one stream into records.
#[derive(Debug)]
pub struct Splitter {
    stream: Stream,
    max: usize,
    /// The start of a line whose end has not arrived yet (at most `max` bytes).
    pending: Vec<u8>,
}

impl Splitter {
    /// A splitter for `stream` with the default record limit.
    pub fn new(stream: Stream) -> Splitter {
        Splitter::with_limit(stream, MAX_RECORD)
    }

    /// A splitter for `stream` whose records hold at most `max` bytes (at least 1).
    pub fn with_limit(stream: Stream, max: usize) -> Splitter {
        Splitter {
            stream,
            max: max.max(1),
            pending: Vec::new(),
        }
    }

    /// Bytes held back, waiting for the end of their line.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Feeds the next bytes read from the stream, calling `emit` for every record they complete.
    pub fn push(&mut self, mut data: &[u8], time: SystemTime, emit: &mut impl FnMut(Record<'_>)) {
        let stream = self.stream;
        while !data.is_empty() {
            let room = self.max - self.pending.len();
            // One byte past the room tells whether the line outgrows a record.
            let window = &data[..data.len().min(room + 1)];
            match memchr::memchr(b'\n', window) {
                Some(end) => {
                    if self.pending.is_empty() {
                        emit(record(stream, time, &data[..end], false));
                    } else {
                        self.pending.extend_from_slice(&data[..end]);
                        emit(record(stream, time, &self.pending, false));
                        self.pending.clear();
                    }
                    data = &data[end + 1..];
                }
                None if window.len() > room => {
                    if self.pending.is_empty() {
                        emit(record(stream, time, &data[..room], true));
                    } else {
                        self.pending.extend_from_slice(&data[..room]);
                        emit(record(stream, time, &self.pending, true));
                        self.pending.clear();
                    }
                    data = &data[room..];
                }
                None => {
                    self.pending.extend_from_slice(data);
                    data = &[];
                }
            }
        }
    }

    /// Ends the stream: bytes left without a newline come out as one partial record.
    pub fn finish(&mut self, time: SystemTime, emit: &mut impl FnMut(Record<'_>)) {
        if !self.pending.is_empty() {
            emit(Record {
                stream: self.stream,
                time,
                bytes: &self.pending,
                partial: true,
            });
            self.pending.clear();
        }
    }
}

fn record(stream: Stream, time: SystemTime, bytes: &[u8], partial: bool) -> Record<'_> {
    Record {
        stream,
        time,
        bytes,
        partial,
    }
}
