//! The Kubernetes CRI log format: `TIME STREAM TAG MESSAGE\n` a record, where TIME is
//! RFC3339Nano in UTC, TAG is `F` for a whole line and `P` for a piece of one, and MESSAGE is
//! the record's raw bytes (any bytes but a newline, so binary output survives).
//!
//! As in the json-file sink, output that ends without a newline ends with a `P` record (the
//! CRI logger in containerd writes `F` and so adds a newline the container never wrote).

use crate::rotate::RotatingFile;
use crate::sinks::FileOptions;
use crate::time::TimeFormat;
use crate::{Driver, Error, Record};

/// A CRI-format sink.
#[derive(Debug)]
pub struct Cri {
    file: RotatingFile,
    encoder: Encoder,
    line: Vec<u8>,
}

impl Cri {
    /// Opens the file, creating it.
    pub fn open(options: FileOptions) -> Result<Cri, Error> {
        Ok(Cri {
            file: RotatingFile::open(options.path, options.rotation)?,
            encoder: Encoder::default(),
            line: Vec::with_capacity(512),
        })
    }
}

impl Driver for Cri {
    fn write(&mut self, record: &Record<'_>) -> Result<(), Error> {
        self.line.clear();
        self.encoder.encode(record, &mut self.line);
        self.file.write_entry(&self.line)
    }

    fn flush(&mut self) -> Result<(), Error> {
        self.file.flush()
    }
}

/// Encodes records as CRI log lines.
#[derive(Debug, Default)]
pub struct Encoder {
    time: TimeFormat,
}

impl Encoder {
    /// Appends `record`'s line, with its final newline, to `out`.
    pub fn encode(&mut self, record: &Record<'_>, out: &mut Vec<u8>) {
        self.time.append(record.time, out);
        out.push(b' ');
        out.extend_from_slice(record.stream.as_str().as_bytes());
        out.extend_from_slice(if record.partial { b" P " } else { b" F " });
        out.extend_from_slice(record.bytes);
        out.push(b'\n');
    }
}
