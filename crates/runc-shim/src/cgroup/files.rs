//! Reading cgroup files: one number, `key value` lines, and the `max` that means no limit.
//!
//! A file a kernel or a configuration does not have reads as nothing (zero, no lines), as
//! the Go shim ignores missing files: the figures it cannot find are left at zero.

use std::collections::HashMap;
use std::path::Path;

/// The file's text, or `None` when it cannot be read.
pub fn text(dir: &Path, name: &str) -> Option<String> {
    std::fs::read_to_string(dir.join(name)).ok()
}

/// A file holding one number; `max` (no limit) reads as `unlimited`, anything unreadable
/// as 0.
pub fn number_or(dir: &Path, name: &str, unlimited: u64) -> u64 {
    text(dir, name).map_or(0, |t| parse_number(&t, unlimited))
}

/// A file holding one number; `max` reads as 0 (cgroup v1's way of saying no limit).
pub fn number(dir: &Path, name: &str) -> u64 {
    number_or(dir, name, 0)
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

/// A flat keyed file (`memory.stat`, `cpu.stat`, `memory.events`): `key value` per line.
pub fn keyed(dir: &Path, name: &str) -> HashMap<String, u64> {
    text(dir, name).map_or_else(HashMap::new, |t| parse_keyed(&t))
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
/// (`2MB`, `1GB`, `64KB`), from `/sys/kernel/mm/hugepages`.
pub fn huge_page_sizes() -> Vec<String> {
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
    fn huge_page_names() {
        assert_eq!(huge_page_name(2048), "2MB");
        assert_eq!(huge_page_name(1_048_576), "1GB");
        assert_eq!(huge_page_name(64), "64KB");
        assert_eq!(parse_device("254:0"), Some((254, 0)));
        assert_eq!(parse_device("Total"), None);
    }
}
