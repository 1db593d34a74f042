//! Reading cgroup files: one number, `key value` lines, and the `max` that means no limit.
//!
//! A file a kernel or a configuration does not have reads as nothing (zero, no lines), as
//! the Go shim ignores missing files: the figures it cannot find are left at zero. Reads go
//! through a [`Reader`], which keeps each file open.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

/// Reads a cgroup's files through descriptors opened on first use and kept: each later read
/// is one `pread` from offset 0 (the kernel writes a cgroup file afresh for every read from
/// its start) instead of an open, a stat, reads and a close, and no path walk. A file that
/// does not exist is remembered as such. The descriptors close with the reader.
#[derive(Debug, Default)]
pub struct Reader {
    open: Mutex<HashMap<PathBuf, Option<File>>>,
    folders: Mutex<HashMap<PathBuf, bool>>,
}

impl Reader {
    /// The file's text, or `None` when it cannot be read.
    pub fn text(&self, dir: &Path, name: &str) -> Option<String> {
        self.with_file(dir, name, |file| read_from_start(file?).ok())
    }

    /// Whether `dir` holds a file `name`, asked once and remembered with its descriptor (no
    /// `stat` on every call).
    pub fn has(&self, dir: &Path, name: &str) -> bool {
        self.with_file(dir, name, |file| file.is_some())
    }

    /// Runs `f` on the kept descriptor of `dir/name`, opened on first use (`None`: the file
    /// does not exist, remembered as such).
    fn with_file<T>(&self, dir: &Path, name: &str, f: impl FnOnce(Option<&File>) -> T) -> T {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        f(open
            .entry(dir.join(name))
            .or_insert_with_key(|path| File::open(path).ok())
            .as_ref())
    }

    /// Whether the folder `dir` exists, asked once and remembered: a controller's folder that
    /// was missing does not appear for a running container, and one that goes away reads as
    /// nothing through the kept descriptors.
    pub fn has_folder(&self, dir: &Path) -> bool {
        let mut folders = self.folders.lock().unwrap_or_else(|p| p.into_inner());
        *folders
            .entry(dir.to_path_buf())
            .or_insert_with_key(|dir| dir.is_dir())
    }

    /// A file holding one number; `max` (no limit) reads as `unlimited`, anything
    /// unreadable as 0.
    pub fn number_or(&self, dir: &Path, name: &str, unlimited: u64) -> u64 {
        self.text(dir, name)
            .map_or(0, |t| parse_number(&t, unlimited))
    }

    /// A file holding one number; `max` reads as 0 (cgroup v1's way of saying no limit).
    pub fn number(&self, dir: &Path, name: &str) -> u64 {
        self.number_or(dir, name, 0)
    }

    /// A flat keyed file (`memory.stat`, `cpu.stat`, `memory.events`): `key value` per line.
    pub fn keyed(&self, dir: &Path, name: &str) -> HashMap<String, u64> {
        self.text(dir, name)
            .map_or_else(HashMap::new, |t| parse_keyed(&t))
    }
}

/// The whole text of `file`, read from offset 0. A read that fills less than the buffer has
/// reached the end (the kernel fills a cgroup file's read as far as the buffer allows), so a
/// small file costs one `pread`, not a second one to find the end.
fn read_from_start(file: &File) -> std::io::Result<String> {
    let mut text = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = file.read_at(&mut chunk, text.len() as u64)?;
        text.extend_from_slice(&chunk[..n]);
        if n < chunk.len() {
            break;
        }
    }
    String::from_utf8(text).map_err(std::io::Error::other)
}

/// One number as cgroup files write it, `max` being `unlimited`.
pub fn parse_number(text: &str, unlimited: u64) -> u64 {
    let t = text.trim();
    if t == "max" {
        unlimited
    } else {
        t.parse().unwrap_or(0)
    }
}

/// The pairs of a flat keyed file's text; lines that are not `key number` are skipped.
pub fn parse_keyed(text: &str) -> HashMap<String, u64> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let key = words.next()?;
            let value = words.next()?.parse().ok()?;
            Some((key.to_owned(), value))
        })
        .collect()
}

/// Space-separated numbers on one line (`cpuacct.usage_percpu`).
pub fn parse_list(text: &str) -> Vec<u64> {
    text.split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect()
}

/// A `MAJOR:MINOR` device number.
pub fn parse_device(text: &str) -> Option<(u64, u64)> {
    let (major, minor) = text.split_once(':')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// Page sizes the kernel offers huge pages in, as the hugetlb controller names its files
/// (`2MB`, `1GB`, `64KB`), from `/sys/kernel/mm/hugepages` (read once per process).
pub fn huge_page_sizes() -> &'static [String] {
    static SIZES: OnceLock<Vec<String>> = OnceLock::new();
    SIZES.get_or_init(|| {
        let Ok(entries) = std::fs::read_dir("/sys/kernel/mm/hugepages") else {
            return Vec::new();
        };
        let mut sizes: Vec<(u64, String)> = entries
            .filter_map(|e| {
                let name = e.ok()?.file_name().into_string().ok()?;
                let kib: u64 = name
                    .strip_prefix("hugepages-")?
                    .strip_suffix("kB")?
                    .parse()
                    .ok()?;
                Some((kib, huge_page_name(kib)))
            })
            .collect();
        sizes.sort();
        sizes.into_iter().map(|(_, name)| name).collect()
    })
}

/// A huge page size in KiB as the hugetlb controller writes it in file names.
pub fn huge_page_name(kib: u64) -> String {
    if kib >= 1 << 20 && kib.is_multiple_of(1 << 20) {
        format!("{}GB", kib >> 20)
    } else if kib >= 1 << 10 && kib.is_multiple_of(1 << 10) {
        format!("{}MB", kib >> 10)
    } else {
        format!("{kib}KB")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_max() {
        assert_eq!(parse_number("4096\n", 0), 4096);
        assert_eq!(parse_number("max\n", u64::MAX), u64::MAX);
        assert_eq!(parse_number("max\n", 0), 0);
        assert_eq!(parse_number("", 7), 0);
    }

    #[test]
    fn keyed_lines() {
        let pairs = parse_keyed("usage_usec 125\nuser_usec 100\nbroken\nsystem_usec x\n");
        assert_eq!(pairs.len(), 2);
        assert_eq!(pairs["usage_usec"], 125);
        assert_eq!(pairs["user_usec"], 100);
    }

    #[test]
    fn a_reader_reads_again_from_the_start() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("n"), "12\n").expect("write");
        let reader = Reader::default();
        assert_eq!(reader.number(dir.path(), "n"), 12);
        std::fs::write(dir.path().join("n"), "13\n").expect("write");
        assert_eq!(
            reader.number(dir.path(), "n"),
            13,
            "the kept descriptor sees the change"
        );
        assert_eq!(reader.text(dir.path(), "missing"), None);
        assert!(reader.has(dir.path(), "n"));
        assert!(!reader.has(dir.path(), "missing"));
        assert!(reader.has_folder(dir.path()));
        assert!(!reader.has_folder(&dir.path().join("missing")));
    }

    #[test]
    fn a_file_longer_than_one_read_is_read_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        let long: String = (0..3000).map(|i| format!("k{i} {i}\n")).collect();
        std::fs::write(dir.path().join("stat"), &long).expect("write");
        let reader = Reader::default();
        assert_eq!(
            reader.text(dir.path(), "stat").as_deref(),
            Some(long.as_str())
        );
        assert_eq!(reader.keyed(dir.path(), "stat").len(), 3000);
    }

    #[test]
    fn huge_page_names() {
        assert_eq!(huge_page_name(2048), "2MB");
        assert_eq!(huge_page_name(1_048_576), "1GB");
        assert_eq!(huge_page_name(64), "64KB");
        assert_eq!(parse_device("254:0"), Some((254, 0)));
        assert_eq!(parse_device("Total"), None);
    }
}
