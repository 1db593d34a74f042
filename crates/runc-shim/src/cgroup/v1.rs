//! cgroup v1 figures, one controller folder each, as `io.containerd.cgroups.v1.Metrics`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use ctrd_api::io::containerd::cgroups::v1;

use super::files::{self, Reader};

/// Nanoseconds per `USER_HZ` tick, the unit of `cpuacct.stat` (100 ticks a second on Linux).
const NANOS_PER_TICK: u64 = 1_000_000_000 / 100;

/// The figures of the controllers in `dirs` (a controller without a folder adds nothing).
pub fn metrics(r: &Reader, dirs: &HashMap<String, PathBuf>) -> v1::Metrics {
    let dir = |c: &str| {
        dirs.get(c)
            .map(PathBuf::as_path)
            .filter(|d| r.has_folder(d))
    };
    v1::Metrics {
        hugetlb: dir("hugetlb").map(|d| hugetlb(r, d)).unwrap_or_default(),
        pids: dir("pids").map(|d| pids(r, d)),
        cpu: (dir("cpu").is_some() || dir("cpuacct").is_some())
            .then(|| cpu(r, dir("cpu"), dir("cpuacct"))),
        memory: dir("memory").map(|d| memory(r, d)),
        memory_oom_control: dir("memory").map(|d| oom_control(r, d)),
        blkio: dir("blkio").map(|d| blkio(r, d, &devices(r))),
        ..Default::default()
    }
}

fn pids(r: &Reader, dir: &Path) -> v1::PidsStat {
    v1::PidsStat {
        current: r.number(dir, "pids.current"),
        limit: r.number(dir, "pids.max"),
    }
}

fn cpu(r: &Reader, cpu: Option<&Path>, cpuacct: Option<&Path>) -> v1::CpuStat {
    let usage = cpuacct.map(|dir| {
        let ticks = r.keyed(dir, "cpuacct.stat");
        let tick = |k: &str| ticks.get(k).copied().unwrap_or(0) * NANOS_PER_TICK;
        v1::CpuUsage {
            total: r.number(dir, "cpuacct.usage"),
            kernel: tick("system"),
            user: tick("user"),
            per_cpu: r
                .text(dir, "cpuacct.usage_percpu")
                .map(|t| files::parse_list(&t))
                .unwrap_or_default(),
        }
    });
    let throttling = cpu.map(|dir| {
        let stat = r.keyed(dir, "cpu.stat");
        let get = |k: &str| stat.get(k).copied().unwrap_or(0);
        v1::Throttle {
            periods: get("nr_periods"),
            throttled_periods: get("nr_throttled"),
            throttled_time: get("throttled_time"),
        }
    });
    v1::CpuStat {
        usage: Some(usage.unwrap_or_default()),
        throttling: Some(throttling.unwrap_or_default()),
    }
}

fn memory_entry(r: &Reader, dir: &Path, module: &str) -> v1::MemoryEntry {
    let file = |name: &str| r.number(dir, &format!("memory.{module}{name}"));
    v1::MemoryEntry {
        limit: file("limit_in_bytes"),
        usage: file("usage_in_bytes"),
        max: file("max_usage_in_bytes"),
        failcnt: file("failcnt"),
    }
}

fn memory(r: &Reader, dir: &Path) -> v1::MemoryStat {
    let stat = r.keyed(dir, "memory.stat");
    let s = |k: &str| stat.get(k).copied().unwrap_or(0);
    v1::MemoryStat {
        cache: s("cache"),
        rss: s("rss"),
        rss_huge: s("rss_huge"),
        mapped_file: s("mapped_file"),
        dirty: s("dirty"),
        writeback: s("writeback"),
        pg_pg_in: s("pgpgin"),
        pg_pg_out: s("pgpgout"),
        pg_fault: s("pgfault"),
        pg_maj_fault: s("pgmajfault"),
        inactive_anon: s("inactive_anon"),
        active_anon: s("active_anon"),
        inactive_file: s("inactive_file"),
        active_file: s("active_file"),
        unevictable: s("unevictable"),
        hierarchical_memory_limit: s("hierarchical_memory_limit"),
        hierarchical_swap_limit: s("hierarchical_memsw_limit"),
        total_cache: s("total_cache"),
        total_rss: s("total_rss"),
        total_rss_huge: s("total_rss_huge"),
        total_mapped_file: s("total_mapped_file"),
        total_dirty: s("total_dirty"),
        total_writeback: s("total_writeback"),
        total_pg_pg_in: s("total_pgpgin"),
        total_pg_pg_out: s("total_pgpgout"),
        total_pg_fault: s("total_pgfault"),
        total_pg_maj_fault: s("total_pgmajfault"),
        total_inactive_anon: s("total_inactive_anon"),
        total_active_anon: s("total_active_anon"),
        total_inactive_file: s("total_inactive_file"),
        total_active_file: s("total_active_file"),
        total_unevictable: s("total_unevictable"),
        usage: Some(memory_entry(r, dir, "")),
        swap: Some(memory_entry(r, dir, "memsw.")),
        kernel: Some(memory_entry(r, dir, "kmem.")),
        kernel_tcp: Some(memory_entry(r, dir, "kmem.tcp.")),
    }
}

fn oom_control(r: &Reader, dir: &Path) -> v1::MemoryOomControl {
    let control = r.keyed(dir, "memory.oom_control");
    let get = |k: &str| control.get(k).copied().unwrap_or(0);
    v1::MemoryOomControl {
        oom_kill_disable: get("oom_kill_disable"),
        under_oom: get("under_oom"),
        oom_kill: get("oom_kill"),
    }
}

fn hugetlb(r: &Reader, dir: &Path) -> Vec<v1::HugetlbStat> {
    files::huge_page_sizes()
        .iter()
        .map(|size| {
            let file = |name: &str| r.number(dir, &format!("hugetlb.{size}.{name}"));
            v1::HugetlbStat {
                usage: file("usage_in_bytes"),
                max: file("max_usage_in_bytes"),
                failcnt: file("failcnt"),
                pagesize: size.clone(),
            }
        })
        .collect()
}

/// Block device names by number, from `/proc/partitions` (`/dev/vda` for 254:0).
fn devices(r: &Reader) -> HashMap<(u64, u64), String> {
    r.text(Path::new("/proc"), "partitions")
        .map(|t| parse_partitions(&t))
        .unwrap_or_default()
}

fn parse_partitions(text: &str) -> HashMap<(u64, u64), String> {
    let mut devices = HashMap::new();
    for line in text.lines().skip(2) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if let [major, minor, _, name] = fields[..]
            && let (Ok(major), Ok(minor)) = (major.parse(), minor.parse())
        {
            devices
                .entry((major, minor))
                .or_insert_with(|| format!("/dev/{name}"));
        }
    }
    devices
}

/// The blkio figures: the proportional-weight scheduler's `*_recursive` files where the
/// kernel has them and they hold entries, else the throttling layer's counters (which every
/// request passes through).
fn blkio(r: &Reader, dir: &Path, devices: &HashMap<(u64, u64), String>) -> v1::BlkIoStat {
    let read = |name: &str| {
        r.text(dir, &format!("blkio.{name}"))
            .map(|t| parse_blkio(&t, devices))
            .unwrap_or_default()
    };
    let mut stat = v1::BlkIoStat::default();
    if r.has(dir, "blkio.io_serviced_recursive") {
        stat = v1::BlkIoStat {
            io_service_bytes_recursive: read("io_service_bytes_recursive"),
            io_serviced_recursive: read("io_serviced_recursive"),
            io_queued_recursive: read("io_queued_recursive"),
            io_service_time_recursive: read("io_service_time_recursive"),
            io_wait_time_recursive: read("io_wait_time_recursive"),
            io_merged_recursive: read("io_merged_recursive"),
            io_time_recursive: read("io_time_recursive"),
            sectors_recursive: read("sectors_recursive"),
        };
    }
    let any = [
        &stat.io_service_bytes_recursive,
        &stat.io_serviced_recursive,
        &stat.io_queued_recursive,
        &stat.io_service_time_recursive,
        &stat.io_wait_time_recursive,
        &stat.io_merged_recursive,
        &stat.io_time_recursive,
        &stat.sectors_recursive,
    ]
    .iter()
    .any(|e| !e.is_empty());
    if !any {
        stat.io_serviced_recursive = read("throttle.io_serviced");
        stat.io_service_bytes_recursive = read("throttle.io_service_bytes");
    }
    stat
}

/// `MAJ:MIN OP VALUE` lines (`MAJ:MIN VALUE` for files without operations); `Total` lines
/// are skipped.
fn parse_blkio(text: &str, devices: &HashMap<(u64, u64), String>) -> Vec<v1::BlkIoEntry> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (device, op, value) = match fields[..] {
                [device, op, value] => (device, op, value),
                [device, value] => (device, "", value),
                _ => return None,
            };
            let (major, minor) = files::parse_device(device)?;
            Some(v1::BlkIoEntry {
                op: op.to_owned(),
                device: devices.get(&(major, minor)).cloned().unwrap_or_default(),
                major,
                minor,
                value: value.parse().ok()?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blkio_lines_and_device_names() {
        let devices = parse_partitions(
            "major minor  #blocks  name\n\n 254        0  268435456 vda\n 254  1  1000 vda1\n",
        );
        assert_eq!(devices[&(254, 0)], "/dev/vda");
        let entries = parse_blkio(
            "254:0 Read 4096\n254:0 Write 8192\n254:0 Total 12288\nTotal 12288\n254:0 77\n",
            &devices,
        );
        assert_eq!(entries.len(), 4, "{entries:?}");
        assert_eq!(entries[1].op, "Write");
        assert_eq!(entries[1].value, 8192);
        assert_eq!(entries[1].device, "/dev/vda");
        assert_eq!(entries[3].op, "");
        assert_eq!(entries[3].value, 77);
    }
}
