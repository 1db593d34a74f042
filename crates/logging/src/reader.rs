//! Reading json-file and CRI logs back, across rotated (and gzipped) files, optionally
//! following the file as the driver writes and rotates it (`docker logs -f`).

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::Error;
use crate::record::Stream;
use crate::rotate::rotated_name;

/// How often a follower looks for new lines.
const FOLLOW_POLL: Duration = Duration::from_millis(20);

/// The format of a log file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Docker's json-file.
    JsonFile,
    /// The Kubernetes CRI log format.
    Cri,
}

impl Format {
    fn name(self) -> &'static str {
        match self {
            Format::JsonFile => "json-file",
            Format::Cri => "CRI",
        }
    }
}

/// One record read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The stream.
    pub stream: Stream,
    /// The time as written (RFC3339Nano).
    pub time: String,
    /// The bytes, without the line's newline.
    pub bytes: Vec<u8>,
    /// No newline followed these bytes in the container's output.
    pub partial: bool,
}

impl Entry {
    /// Appends the container's bytes this entry stands for (with the newline of a whole line).
    pub fn append_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.bytes);
        if !self.partial {
            out.push(b'\n');
        }
    }
}

#[derive(Deserialize)]
struct JsonLine {
    #[serde(default)]
    log: String,
    stream: String,
    time: String,
}

/// Reads the entries of a log and of its rotated files, oldest first.
///
/// ```no_run
/// use ctrd_logging::reader::{Format, LogReader};
///
/// let mut out = Vec::new();
/// for entry in LogReader::open("/var/log/c1.log", Format::JsonFile)? {
///     entry?.append_to(&mut out);
/// }
/// # Ok::<(), ctrd_logging::Error>(())
/// ```
pub struct LogReader {
    path: PathBuf,
    format: Format,
    /// Files still to read, oldest first.
    queue: VecDeque<Source>,
    current: Option<Current>,
    follow: Option<Box<dyn FnMut() -> bool + Send>>,
    line: Vec<u8>,
}

/// A file to read: by name, or already open (when found while following rotation).
enum Source {
    Path(PathBuf),
    Open(Current),
}

struct Current {
    path: PathBuf,
    reader: BufReader<Box<dyn Read + Send>>,
    /// The live file itself (its inode, and its first line for finding it once rotated).
    live: Option<File>,
    line_number: u64,
}

impl std::fmt::Debug for LogReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogReader")
            .field("path", &self.path)
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

impl LogReader {
    /// Reads `path`'s rotated files (`path.N[.gz]` down to `path.1[.gz]`) and then `path`,
    /// ending at the end of `path`.
    pub fn open(path: impl Into<PathBuf>, format: Format) -> Result<LogReader, Error> {
        let path = path.into();
        let mut queue = VecDeque::new();
        let mut index = 1;
        loop {
            let plain = rotated_name(&path, index, false);
            let gz = rotated_name(&path, index, true);
            if plain.exists() {
                queue.push_front(Source::Path(plain));
            } else if gz.exists() {
                queue.push_front(Source::Path(gz));
            } else {
                break;
            }
            index += 1;
        }
        queue.push_back(Source::Path(path.clone()));
        Ok(LogReader {
            path,
            format,
            queue,
            current: None,
            follow: None,
            line: Vec::with_capacity(4096),
        })
    }

    /// Like [`open`](LogReader::open), but at the end of `path` waits for more lines, moving
    /// to the new file when the writer rotates, until `done` returns true while nothing is
    /// left to read (for instance once the driver has exited).
    pub fn follow(
        path: impl Into<PathBuf>,
        format: Format,
        done: impl FnMut() -> bool + Send + 'static,
    ) -> Result<LogReader, Error> {
        let mut reader = LogReader::open(path, format)?;
        reader.follow = Some(Box::new(done));
        Ok(reader)
    }

    /// The next entry, or `None` at the end.
    pub fn next_entry(&mut self) -> Result<Option<Entry>, Error> {
        loop {
            if self.current.is_none() {
                self.current = match self.queue.pop_front() {
                    None => return Ok(None),
                    Some(Source::Open(current)) => Some(current),
                    Some(Source::Path(next)) => {
                        let live = next == self.path;
                        Some(open_file(&next, live)?)
                    }
                };
            }
            let Some(current) = self.current.as_mut() else {
                continue;
            };
            current
                .reader
                .read_until(b'\n', &mut self.line)
                .map_err(|e| Error::file("reading", &current.path, e))?;
            if self.line.last() == Some(&b'\n') {
                current.line_number += 1;
                let entry = parse(self.format, &self.line, &current.path, current.line_number);
                self.line.clear();
                return entry.map(Some);
            }
            // End of this file (perhaps in the middle of a line being written).
            let Some(live) = current.live.as_ref() else {
                if !self.line.is_empty() {
                    return Err(truncated(self.format, &current.path, current.line_number));
                }
                self.current = None;
                continue;
            };
            let Some(done) = self.follow.as_mut() else {
                if !self.line.is_empty() {
                    return Err(truncated(self.format, &current.path, current.line_number));
                }
                return Ok(None);
            };
            let inode = live
                .metadata()
                .map_err(|e| Error::file("reading", &current.path, e))?
                .ino();
            let rotated = std::fs::metadata(&self.path)
                .map(|m| m.ino() != inode)
                .unwrap_or(false);
            if rotated {
                // The writer has moved on: what it wrote to this file is complete. Finish it,
                // then read the files rotated after it and the new live file, opened now so
                // that further rotations cannot move them away.
                let newer = newer_files(&self.path, live)?;
                current.live = None;
                for source in newer.into_iter().rev() {
                    self.queue.push_front(source);
                }
                continue;
            }
            if self.line.is_empty() && done() {
                // One last look: the writer may have added lines before it finished.
                let n = current
                    .reader
                    .read_until(b'\n', &mut self.line)
                    .map_err(|e| Error::file("reading", &current.path, e))?;
                if n == 0 {
                    return Ok(None);
                }
                continue;
            }
            std::thread::sleep(FOLLOW_POLL);
        }
    }
}

impl Iterator for LogReader {
    type Item = Result<Entry, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_entry().transpose()
    }
}

fn open_file(path: &Path, live: bool) -> Result<Current, Error> {
    let file = File::open(path).map_err(|e| Error::file("opening log file", path, e))?;
    let live = if live {
        Some(
            file.try_clone()
                .map_err(|e| Error::file("opening", path, e))?,
        )
    } else {
        None
    };
    let reader: Box<dyn Read + Send> = if path.extension().is_some_and(|e| e == "gz") {
        Box::new(flate2::read::MultiGzDecoder::new(BufReader::new(file)))
    } else {
        Box::new(file)
    };
    Ok(Current {
        path: path.to_owned(),
        reader: BufReader::with_capacity(256 * 1024, reader),
        live,
        line_number: 0,
    })
}

/// The files written after `old` (the live file before a rotation), oldest first, open: the
/// rotated files newer than it and the new live file.
///
/// `old` is found among the rotated files by its first line (its inode is gone once it is
/// compressed). The writer may be rotating again while we look, so a look that finds a gap,
/// the same file twice, or the live file replaced is retried. When `old` cannot be found (it
/// was empty, or already deleted by `max-file`), only the live file follows.
fn newer_files(path: &Path, old: &File) -> Result<Vec<Source>, Error> {
    let first = first_line_at(old);
    if !first.is_empty() {
        for _ in 0..50 {
            if let Some(found) = look_for(path, &first) {
                return Ok(found);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    Ok(vec![Source::Open(open_file(path, true)?)])
}

/// One look for the rotated file starting with `first`; see [`newer_files`].
fn look_for(path: &Path, first: &[u8]) -> Option<Vec<Source>> {
    let live_inode = std::fs::metadata(path).ok()?.ino();
    let mut rotated = Vec::new();
    let mut inodes = Vec::new();
    let mut index = 1;
    loop {
        let candidate = [
            rotated_name(path, index, false),
            rotated_name(path, index, true),
        ]
        .into_iter()
        .find(|p| p.exists())?;
        let file = File::open(&candidate).ok()?;
        let inode = file.metadata().ok()?.ino();
        if inodes.contains(&inode) {
            return None;
        }
        inodes.push(inode);
        let mut probe = open_file(&candidate, false).ok()?;
        let mut line = Vec::new();
        probe.reader.read_until(b'\n', &mut line).ok()?;
        if line == first {
            break;
        }
        rotated.push(open_file(&candidate, false).ok()?);
        index += 1;
    }
    let live = open_file(path, true).ok()?;
    let still = live.live.as_ref()?.metadata().ok()?.ino();
    if still != live_inode || std::fs::metadata(path).ok()?.ino() != live_inode {
        return None;
    }
    let mut newer: Vec<Source> = rotated.into_iter().rev().map(Source::Open).collect();
    newer.push(Source::Open(live));
    Some(newer)
}

/// The first line of an open file, read without moving its offset.
fn first_line_at(file: &File) -> Vec<u8> {
    use std::os::unix::fs::FileExt;
    let mut line = Vec::new();
    let mut buf = [0u8; 8192];
    let mut offset = 0u64;
    while let Ok(n) = file.read_at(&mut buf, offset) {
        if n == 0 {
            return Vec::new();
        }
        if let Some(end) = memchr::memchr(b'\n', &buf[..n]) {
            line.extend_from_slice(&buf[..=end]);
            return line;
        }
        line.extend_from_slice(&buf[..n]);
        offset += n as u64;
    }
    Vec::new()
}

fn truncated(format: Format, path: &Path, line: u64) -> Error {
    Error::Format {
        path: path.to_owned(),
        line: line + 1,
        format: format.name(),
        reason: "the file ends in the middle of a line".into(),
    }
}

fn parse(format: Format, line: &[u8], path: &Path, number: u64) -> Result<Entry, Error> {
    let bad = |reason: String| Error::Format {
        path: path.to_owned(),
        line: number,
        format: format.name(),
        reason,
    };
    let line = &line[..line.len() - 1];
    match format {
        Format::JsonFile => {
            let parsed: JsonLine = serde_json::from_slice(line).map_err(|e| bad(e.to_string()))?;
            let stream = Stream::parse(&parsed.stream)
                .ok_or_else(|| bad(format!("unknown stream {:?}", parsed.stream)))?;
            let mut bytes = parsed.log.into_bytes();
            let partial = bytes.last() != Some(&b'\n');
            if !partial {
                bytes.pop();
            }
            Ok(Entry {
                stream,
                time: parsed.time,
                bytes,
                partial,
            })
        }
        Format::Cri => {
            let mut fields = line.splitn(4, |b| *b == b' ');
            let (Some(time), Some(stream), Some(tag), Some(bytes)) =
                (fields.next(), fields.next(), fields.next(), fields.next())
            else {
                return Err(bad("expected `TIME STREAM TAG MESSAGE`".into()));
            };
            let stream = std::str::from_utf8(stream)
                .ok()
                .and_then(Stream::parse)
                .ok_or_else(|| {
                    bad(format!(
                        "unknown stream {:?}",
                        String::from_utf8_lossy(stream)
                    ))
                })?;
            let partial = match tag {
                b"P" => true,
                b"F" => false,
                other => {
                    return Err(bad(format!(
                        "unknown tag {:?} (expected P or F)",
                        String::from_utf8_lossy(other)
                    )));
                }
            };
            Ok(Entry {
                stream,
                time: String::from_utf8_lossy(time).into_owned(),
                bytes: bytes.to_vec(),
                partial,
            })
        }
    }
}
