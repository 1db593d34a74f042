//! Reading json-file and CRI logs back, across rotated (and gzipped) files, optionally
//! following the file as the driver writes and rotates it (`docker logs -f`).

use std::collections::{HashMap, HashSet, VecDeque};
use std::ffi::OsStr;
use std::fs::File;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::{BufRead, BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirEntryExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

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
///
/// # Following rotation
///
/// A follower ([`LogReader::follow`]) holds one file open at a time. When it has read a file
/// to its end (a rotated file, or the live file once the writer has renamed it to `PATH.1`),
/// it finds that file again among the rotated files, by inode or, once it is gzipped, by its
/// first line, and opens the one written after it. The writer may be rotating meanwhile: it
/// removes the oldest file, renames `PATH.N` to `PATH.N+1` from the oldest down and `PATH` to
/// `PATH.1` last, so a listing of the directory taken during a rotation can show a gap, a file
/// twice, or miss the oldest file. The follower trusts a listing only when
///
/// - it shows no gap and no file twice, the live file did not change while it was taken, and
///   the finished file is in it; or
/// - it is identical to the listing taken just before (nothing moved between the two, so both
///   show the directory as it is, gaps and all).
///
/// Otherwise it looks again, every 2 ms, for as long as the writer keeps moving files (at
/// most 30 s: then [`next_entry`](LogReader::next_entry) fails with [`Error::File`] naming
/// the log). Each look lists the directory once; only gzipped files it has not seen before
/// are opened (to read their first line), and only when it is looking for a file it read
/// uncompressed.
///
/// A trusted listing without the finished file means `max-file` deleted it, and maybe newer
/// files, before the follower got there: those records are no longer on disk. The follower
/// then goes on with the oldest file left, logs a `tracing` warning naming the file it
/// finished and the one it goes on with, and counts the gap ([`LogReader::gaps`]). It does
/// not fail: a reader that stops when the writer outruns it would lose more.
pub struct LogReader {
    path: PathBuf,
    format: Format,
    /// Files still to read, oldest first (when not following).
    queue: VecDeque<PathBuf>,
    current: Option<Current>,
    follow: Option<Follow>,
    line: Vec<u8>,
}

/// The file being read.
struct Current {
    /// The name it was opened by.
    path: PathBuf,
    reader: BufReader<Box<dyn Read + Send>>,
    /// The file itself: its inode, and its first line to find it once it is gzipped.
    file: File,
    /// It was opened gzipped (`PATH.N.gz`).
    compressed: bool,
    /// The writer still writes it (as far as the reader knows).
    live: bool,
    line_number: u64,
}

/// A follower's state.
struct Follow {
    done: Box<dyn FnMut() -> bool + Send>,
    /// Hashes of the first lines of gzipped rotated files (`None`: unreadable), by file.
    first_lines: HashMap<FileKey, Option<u64>>,
    gaps: u64,
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
    /// ending at the end of `path`. The rotated files are found when the reader is made and
    /// opened by name as it reaches them, so this is for a log no one is rotating; use
    /// [`follow`](LogReader::follow) for a live one.
    pub fn open(path: impl Into<PathBuf>, format: Format) -> Result<LogReader, Error> {
        let path = path.into();
        let mut queue = VecDeque::new();
        let mut index = 1;
        loop {
            let plain = rotated_name(&path, index, false);
            let gz = rotated_name(&path, index, true);
            if plain.exists() {
                queue.push_front(plain);
            } else if gz.exists() {
                queue.push_front(gz);
            } else {
                break;
            }
            index += 1;
        }
        queue.push_back(path.clone());
        Ok(LogReader {
            path,
            format,
            queue,
            current: None,
            follow: None,
            line: Vec::with_capacity(4096),
        })
    }

    /// Reads `path`'s rotated files and then `path` like [`open`](LogReader::open), but at
    /// the end of `path` waits for more lines, moving on through the files the writer rotates
    /// (see [Following rotation](LogReader#following-rotation)), until `done` returns true
    /// while nothing is left to read (for instance once the driver has exited).
    pub fn follow(
        path: impl Into<PathBuf>,
        format: Format,
        done: impl FnMut() -> bool + Send + 'static,
    ) -> Result<LogReader, Error> {
        Ok(LogReader {
            path: path.into(),
            format,
            queue: VecDeque::new(),
            current: None,
            follow: Some(Follow {
                done: Box::new(done),
                first_lines: HashMap::new(),
                gaps: 0,
            }),
            line: Vec::with_capacity(4096),
        })
    }

    /// How often this follower found that `max-file` had deleted the file it had just read
    /// before it could open the next one, so that it went on with the oldest file left and
    /// the records of the files deleted in between (if any) were lost. Always 0 for a reader
    /// that does not follow.
    pub fn gaps(&self) -> u64 {
        self.follow.as_ref().map_or(0, |f| f.gaps)
    }

    /// The next entry, or `None` at the end.
    pub fn next_entry(&mut self) -> Result<Option<Entry>, Error> {
        loop {
            if self.current.is_none() {
                let first = match self.follow.as_mut() {
                    Some(follow) => follow.first_file(&self.path)?,
                    None => match self.queue.pop_front() {
                        None => return Ok(None),
                        Some(next) => {
                            let live = next == self.path;
                            open_file(&next, live)?
                        }
                    },
                };
                self.current = Some(first);
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
            if !current.live {
                if !self.line.is_empty() {
                    return Err(truncated(self.format, &current.path, current.line_number));
                }
                match self.follow.as_mut() {
                    None => self.current = None,
                    Some(follow) => match follow.next_file(&self.path, current)? {
                        Some(next) => *current = next,
                        None => return Ok(None),
                    },
                }
                continue;
            }
            let Some(follow) = self.follow.as_mut() else {
                if !self.line.is_empty() {
                    return Err(truncated(self.format, &current.path, current.line_number));
                }
                return Ok(None);
            };
            let inode = current
                .file
                .metadata()
                .map_err(|e| Error::file("reading", &current.path, e))?
                .ino();
            let rotated = std::fs::metadata(&self.path).is_ok_and(|m| m.ino() != inode);
            if rotated {
                // The writer has moved on: what it wrote to this file is complete. Finish
                // it, then find what follows.
                current.live = false;
                continue;
            }
            if self.line.is_empty() && (follow.done)() {
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

/// How long a follower keeps looking for its place while the writer keeps moving files.
const SETTLE_PATIENCE: Duration = Duration::from_secs(30);

/// The pause between two looks at the rotated files.
const LOOK_PAUSE: Duration = Duration::from_millis(2);

impl Follow {
    /// The first file to read: the oldest rotated file, or the live file.
    fn first_file(&mut self, path: &Path) -> Result<Current, Error> {
        let deadline = Instant::now() + SETTLE_PATIENCE;
        let mut previous: Option<Listing> = None;
        loop {
            let listing = list(path)?;
            if listing.consistent() && !listing.moved && previous.as_ref() == Some(&listing) {
                match (listing.rotated.last(), listing.live) {
                    (Some(oldest), _) => {
                        if let Some(current) = open_rotated(path, oldest)? {
                            return Ok(current);
                        }
                    }
                    (None, Some(inode)) => {
                        if let Some(current) = open_live(path, inode)? {
                            return Ok(current);
                        }
                    }
                    (None, None) => {
                        return Err(Error::file(
                            "opening log file",
                            path,
                            std::io::ErrorKind::NotFound.into(),
                        ));
                    }
                }
            }
            if Instant::now() >= deadline {
                return Err(restless(path));
            }
            previous = Some(listing);
            std::thread::sleep(LOOK_PAUSE);
        }
    }

    /// The file written after `finished` (read to its end, no longer written), open; `None`
    /// when the writer is done and there is no live file to go on with.
    fn next_file(&mut self, path: &Path, finished: &Current) -> Result<Option<Current>, Error> {
        let inode = finished
            .file
            .metadata()
            .map_err(|e| Error::file("reading", &finished.path, e))?
            .ino();
        // A file read uncompressed may be gzipped since: then only its first line tells.
        let first = (!finished.compressed).then(|| line_hash(&first_line_at(&finished.file)));
        let deadline = Instant::now() + SETTLE_PATIENCE;
        let mut previous: Option<Listing> = None;
        loop {
            let listing = list(path)?;
            let consistent = listing.consistent();
            let settled = consistent && !listing.moved && previous.as_ref() == Some(&listing);
            let whole =
                consistent && !listing.moved && listing.live.is_some() && listing.gap_free();
            if settled || whole {
                match self.position(path, &listing, inode, first)? {
                    Position::Moved => {}
                    Position::At(index) => match (listing.newest_before(index), listing.live) {
                        (Some(next), _) => {
                            if let Some(current) = open_rotated(path, next)? {
                                return Ok(Some(current));
                            }
                        }
                        (None, Some(live)) => {
                            if let Some(current) = open_live(path, live)? {
                                return Ok(Some(current));
                            }
                        }
                        (None, None) => {
                            if settled && (self.done)() {
                                return Ok(None);
                            }
                        }
                    },
                    Position::Absent if settled => {
                        let next = match (listing.rotated.last(), listing.live) {
                            (Some(oldest), _) => open_rotated(path, oldest)?,
                            (None, Some(live)) => open_live(path, live)?,
                            (None, None) if (self.done)() => return Ok(None),
                            (None, None) => None,
                        };
                        if let Some(next) = next {
                            self.gaps += 1;
                            tracing::warn!(
                                log = %path.display(),
                                finished = %finished.path.display(),
                                resumed = %next.path.display(),
                                rotated_files_left = listing.rotated.len(),
                                "the log follower fell behind the writer: max-file deleted the \
                                 file it had just read before it could find the one after it; \
                                 it goes on with the oldest file left, and the records of any \
                                 file deleted in between are lost"
                            );
                            return Ok(Some(next));
                        }
                    }
                    Position::Absent => {}
                }
            }
            if Instant::now() >= deadline {
                return Err(restless(path));
            }
            previous = Some(listing);
            std::thread::sleep(LOOK_PAUSE);
        }
    }

    /// Where the file with `inode`, or (gzipped since) with a first line hashing to `first`,
    /// is in `listing`.
    fn position(
        &mut self,
        path: &Path,
        listing: &Listing,
        inode: u64,
        first: Option<u64>,
    ) -> Result<Position, Error> {
        let mut found = Position::Absent;
        for file in &listing.rotated {
            if file.inode == inode {
                found = Position::At(file.index);
                break;
            }
            let Some(first) = first.filter(|_| file.compressed) else {
                continue;
            };
            match self.first_line_hash(path, file)? {
                None => {
                    found = Position::Moved;
                    break;
                }
                Some(hash) if hash == Some(first) => {
                    found = Position::At(file.index);
                    break;
                }
                Some(_) => {}
            }
        }
        if self.first_lines.len() > 2 * listing.rotated.len() + 16 {
            let inodes: HashSet<u64> = listing.rotated.iter().map(|f| f.inode).collect();
            self.first_lines
                .retain(|key, _| inodes.contains(&key.inode));
        }
        Ok(found)
    }

    /// The hash of the first line of a gzipped rotated file (`Some(None)`: unreadable), or
    /// `None` if the file has moved since it was listed.
    fn first_line_hash(
        &mut self,
        path: &Path,
        file: &Rotated,
    ) -> Result<Option<Option<u64>>, Error> {
        let name = rotated_name(path, file.index, file.compressed);
        let metadata = match std::fs::metadata(&name) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::file("reading", &name, e)),
        };
        if metadata.ino() != file.inode {
            return Ok(None);
        }
        let key = FileKey::of(&metadata);
        if let Some(hash) = self.first_lines.get(&key) {
            return Ok(Some(*hash));
        }
        let Some(mut probe) = open_rotated(path, file)? else {
            return Ok(None);
        };
        let mut line = Vec::new();
        let hash = probe
            .reader
            .read_until(b'\n', &mut line)
            .ok()
            .map(|_| line_hash(&line));
        self.first_lines.insert(key, hash);
        Ok(Some(hash))
    }
}

/// What the writer has on disk: the live file and the rotated files.
#[derive(Debug, PartialEq, Eq)]
struct Listing {
    /// The live file's inode, if it is there.
    live: Option<u64>,
    /// The live file changed while the directory was listed.
    moved: bool,
    /// The rotated files, by index (newest first), the plain file before the gzipped one.
    rotated: Vec<Rotated>,
}

/// A rotated file as listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Rotated {
    index: u32,
    compressed: bool,
    inode: u64,
}

/// Where a file is among the rotated files.
enum Position {
    /// At this index.
    At(u32),
    /// Not there.
    Absent,
    /// A file moved while it was looked at: look again.
    Moved,
}

impl Listing {
    /// No name and no file twice (a file seen at its old and new name during a rename).
    fn consistent(&self) -> bool {
        let names = self
            .rotated
            .windows(2)
            .all(|w| (w[0].index, w[0].compressed) != (w[1].index, w[1].compressed));
        let mut inodes: Vec<u64> = self.rotated.iter().map(|f| f.inode).collect();
        inodes.extend(self.live);
        inodes.sort_unstable();
        names && inodes.windows(2).all(|w| w[0] != w[1])
    }

    /// The rotated files are numbered 1 to N without a gap.
    fn gap_free(&self) -> bool {
        let mut expected = 1;
        for file in &self.rotated {
            if file.index == expected {
                expected += 1;
            } else if file.index != expected - 1 {
                return false;
            }
        }
        true
    }

    /// The newest rotated file older than index `index` (the gzipped one if both are there).
    fn newest_before(&self, index: u32) -> Option<&Rotated> {
        self.rotated.iter().rev().find(|f| f.index < index)
    }
}

/// Lists the live file and the rotated files of `path`.
fn list(path: &Path) -> Result<Listing, Error> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let Some(base) = path.file_name() else {
        return Err(Error::file(
            "following",
            path,
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file name"),
        ));
    };
    let before = live_inode(path)?;
    let mut rotated = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| Error::file("listing", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::file("listing", dir, e))?;
        if let Some((index, compressed)) = rotated_index(base, &entry.file_name()) {
            rotated.push(Rotated {
                index,
                compressed,
                inode: entry.ino(),
            });
        }
    }
    let after = live_inode(path)?;
    rotated.sort_unstable();
    Ok(Listing {
        live: before,
        moved: before != after,
        rotated,
    })
}

/// The inode of the live file, if it is there.
fn live_inode(path: &Path) -> Result<Option<u64>, Error> {
    match std::fs::metadata(path) {
        Ok(m) => Ok(Some(m.ino())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::file("reading", path, e)),
    }
}

/// The index of a rotated file `BASE.N` or `BASE.N.gz`, and whether it is gzipped.
fn rotated_index(base: &OsStr, name: &OsStr) -> Option<(u32, bool)> {
    let rest = name
        .as_bytes()
        .strip_prefix(base.as_bytes())?
        .strip_prefix(b".")?;
    let (digits, compressed) = match rest.strip_suffix(b".gz") {
        Some(digits) => (digits, true),
        None => (rest, false),
    };
    if digits.first().is_none_or(|d| *d == b'0') || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let index = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some((index, compressed))
}

/// Opens a listed rotated file, or `None` if another file has its name by now.
fn open_rotated(path: &Path, file: &Rotated) -> Result<Option<Current>, Error> {
    let name = rotated_name(path, file.index, file.compressed);
    open_listed(&name, file.inode, false)
}

/// Opens the live file, or `None` if it is no longer the one listed.
fn open_live(path: &Path, inode: u64) -> Result<Option<Current>, Error> {
    open_listed(path, inode, true)
}

fn open_listed(name: &Path, inode: u64, live: bool) -> Result<Option<Current>, Error> {
    let current = match open_file(name, live) {
        Ok(current) => current,
        Err(Error::File { error, .. }) if error.kind() == std::io::ErrorKind::NotFound => {
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    let now = current
        .file
        .metadata()
        .map_err(|e| Error::file("reading", name, e))?
        .ino();
    Ok((now == inode).then_some(current))
}

/// Tells files apart across renames, without trusting an inode number alone (a deleted
/// file's number is soon given to a new one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct FileKey {
    inode: u64,
    size: u64,
    mtime: i64,
    mtime_nsec: i64,
}

impl FileKey {
    fn of(metadata: &std::fs::Metadata) -> FileKey {
        FileKey {
            inode: metadata.ino(),
            size: metadata.len(),
            mtime: metadata.mtime(),
            mtime_nsec: metadata.mtime_nsec(),
        }
    }
}

fn line_hash(line: &[u8]) -> u64 {
    let mut hasher = DefaultHasher::new();
    line.hash(&mut hasher);
    hasher.finish()
}

fn restless(path: &Path) -> Error {
    Error::file(
        "following",
        path,
        std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!(
                "the writer kept rotating for {} s without a pause long enough for the \
                 follower to find its place among the rotated files",
                SETTLE_PATIENCE.as_secs()
            ),
        ),
    )
}

fn open_file(path: &Path, live: bool) -> Result<Current, Error> {
    let file = File::open(path).map_err(|e| Error::file("opening log file", path, e))?;
    let identity = file
        .try_clone()
        .map_err(|e| Error::file("opening", path, e))?;
    let compressed = path.extension().is_some_and(|e| e == "gz");
    let reader: Box<dyn Read + Send> = if compressed {
        Box::new(flate2::read::MultiGzDecoder::new(BufReader::new(file)))
    } else {
        Box::new(file)
    };
    Ok(Current {
        path: path.to_owned(),
        reader: BufReader::with_capacity(256 * 1024, reader),
        file: identity,
        compressed,
        live,
        line_number: 0,
    })
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

#[cfg(test)]
mod tests {
    use super::{Listing, Rotated, rotated_index};
    use std::ffi::OsStr;

    fn listing(files: &[(u32, bool, u64)], live: u64) -> Listing {
        let mut rotated: Vec<Rotated> = files
            .iter()
            .map(|&(index, compressed, inode)| Rotated {
                index,
                compressed,
                inode,
            })
            .collect();
        rotated.sort_unstable();
        Listing {
            live: Some(live),
            moved: false,
            rotated,
        }
    }

    #[test]
    fn rotated_names_are_recognised_and_nothing_else() {
        let base = OsStr::new("c.log");
        let index = |name: &str| rotated_index(base, OsStr::new(name));
        assert_eq!(index("c.log.1"), Some((1, false)));
        assert_eq!(index("c.log.12.gz"), Some((12, true)));
        for other in [
            "c.log",
            "c.log.",
            "c.log.0",
            "c.log.01",
            "c.log.1.gz.tmp",
            "c.log.x",
            "c.log.gz",
            "d.log.1",
            "c.log.99999999999",
        ] {
            assert_eq!(index(other), None, "{other}");
        }
    }

    #[test]
    fn gaps_and_doubles_are_seen() {
        let whole = listing(&[(1, false, 10), (1, true, 11), (2, true, 12)], 9);
        assert!(whole.gap_free() && whole.consistent());
        let gap = listing(&[(1, true, 11), (3, true, 12)], 9);
        assert!(!gap.gap_free() && gap.consistent());
        let twice = listing(&[(1, true, 11), (2, true, 11)], 9);
        assert!(!twice.consistent());
        let live_twice = listing(&[(1, false, 9)], 9);
        assert!(!live_twice.consistent());
        assert_eq!(whole.newest_before(2).map(|f| f.inode), Some(11));
        assert_eq!(whole.newest_before(1), None);
        assert_eq!(gap.newest_before(3).map(|f| f.inode), Some(11));
    }
}
