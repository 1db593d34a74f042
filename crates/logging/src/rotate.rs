//! A log file rotated by size, as Docker's json-file driver rotates: `PATH` is written,
//! `PATH.1` is the newest rotated file and `PATH.N` (N = `max-file` - 1) the oldest; with
//! compression the rotated files are `PATH.N.gz`.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

use crate::Error;

/// Buffer in front of the file: one write call per 256 KiB or per flush.
const BUFFER: usize = 256 * 1024;

/// How a [`RotatingFile`] rotates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotation {
    /// Rotate once the file holds this many bytes (`max-size`); `None` never rotates.
    pub max_size: Option<u64>,
    /// Files kept, the one being written included (`max-file`, at least 1). With 1, the file
    /// is emptied instead of rotated, as Docker does.
    pub max_file: u32,
    /// Gzip rotated files (`compress`), in a background thread.
    pub compress: bool,
}

impl Default for Rotation {
    fn default() -> Rotation {
        Rotation {
            max_size: None,
            max_file: 1,
            compress: false,
        }
    }
}

/// The name of rotated file `index` (1 = newest) of `path`.
pub fn rotated_name(path: &Path, index: u32, compressed: bool) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{index}"));
    if compressed {
        name.push(".gz");
    }
    PathBuf::from(name)
}

/// An append-only log file that rotates by size. Entries are never split across files.
#[derive(Debug)]
pub struct RotatingFile {
    path: PathBuf,
    rotation: Rotation,
    out: BufWriter<File>,
    size: u64,
    compressing: Option<JoinHandle<Result<(), Error>>>,
}

impl RotatingFile {
    /// Opens (creating, mode 0640) `path` for appending.
    pub fn open(path: impl Into<PathBuf>, rotation: Rotation) -> Result<RotatingFile, Error> {
        let path = path.into();
        let file = open_append(&path)?;
        let size = file
            .metadata()
            .map_err(|e| Error::file("reading the size of", &path, e))?
            .len();
        Ok(RotatingFile {
            path,
            rotation: Rotation {
                max_file: rotation.max_file.max(1),
                ..rotation
            },
            out: BufWriter::with_capacity(BUFFER, file),
            size,
            compressing: None,
        })
    }

    /// The file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one entry, rotating first if the file is full.
    pub fn write_entry(&mut self, entry: &[u8]) -> Result<(), Error> {
        if self.rotation.max_size.is_some_and(|max| self.size >= max) {
            self.rotate()?;
        }
        self.out
            .write_all(entry)
            .map_err(|e| Error::file("writing", &self.path, e))?;
        self.size += entry.len() as u64;
        Ok(())
    }

    /// Writes out what is buffered.
    pub fn flush(&mut self) -> Result<(), Error> {
        self.out
            .flush()
            .map_err(|e| Error::file("writing", &self.path, e))
    }

    /// Waits for a background compression to end.
    fn wait_compression(&mut self) -> Result<(), Error> {
        match self.compressing.take() {
            None => Ok(()),
            Some(handle) => handle.join().unwrap_or_else(|_| {
                Err(Error::file(
                    "compressing",
                    rotated_name(&self.path, 1, false),
                    std::io::Error::other("the compression thread panicked"),
                ))
            }),
        }
    }

    fn rotate(&mut self) -> Result<(), Error> {
        self.flush()?;
        let Rotation {
            max_file, compress, ..
        } = self.rotation;
        if max_file == 1 {
            self.out
                .get_ref()
                .set_len(0)
                .map_err(|e| Error::file("emptying", &self.path, e))?;
            self.size = 0;
            return Ok(());
        }
        // The previous compression must be done before its file moves.
        self.wait_compression()?;
        let oldest = max_file - 1;
        for compressed in [false, true] {
            remove_if_exists(&rotated_name(&self.path, oldest, compressed))?;
        }
        for index in (1..oldest).rev() {
            for compressed in [false, true] {
                let from = rotated_name(&self.path, index, compressed);
                let to = rotated_name(&self.path, index + 1, compressed);
                match std::fs::rename(&from, &to) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(Error::file("renaming", from, e)),
                }
            }
        }
        let newest = rotated_name(&self.path, 1, false);
        std::fs::rename(&self.path, &newest).map_err(|e| Error::file("renaming", &self.path, e))?;
        let file = open_append(&self.path)?;
        self.out = BufWriter::with_capacity(BUFFER, file);
        self.size = 0;
        if compress {
            self.compressing = Some(std::thread::spawn(move || gzip(&newest)));
        }
        Ok(())
    }
}

impl Drop for RotatingFile {
    fn drop(&mut self) {
        let _ = self.flush();
        let _ = self.wait_compression();
    }
}

fn open_append(path: &Path) -> Result<File, Error> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .open(path)
        .map_err(|e| Error::file("opening log file", path, e))
}

fn remove_if_exists(path: &Path) -> Result<(), Error> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::file("removing", path, e)),
    }
}

/// Compresses `path` into `path.gz` (through a temporary name, so that a reader sees either
/// the plain file or the whole compressed one), then removes `path`.
fn gzip(path: &Path) -> Result<(), Error> {
    let mut gz = path.as_os_str().to_owned();
    gz.push(".gz");
    let gz = PathBuf::from(gz);
    let mut tmp = gz.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut input = File::open(path).map_err(|e| Error::file("opening", path, e))?;
    let output = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o640)
        .open(&tmp)
        .map_err(|e| Error::file("creating", &tmp, e))?;
    let mut encoder =
        flate2::write::GzEncoder::new(BufWriter::new(output), flate2::Compression::fast());
    std::io::copy(&mut input, &mut encoder).map_err(|e| Error::file("compressing", path, e))?;
    encoder
        .finish()
        .and_then(|mut w| w.flush())
        .map_err(|e| Error::file("writing", &tmp, e))?;
    std::fs::rename(&tmp, &gz).map_err(|e| Error::file("renaming", &tmp, e))?;
    remove_if_exists(path)
}
