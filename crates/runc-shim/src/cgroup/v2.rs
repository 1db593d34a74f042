//! cgroup v2 figures, every controller in one folder, as `io.containerd.cgroups.v2.Metrics`.

use std::path::Path;

use ctrd_api::io::containerd::cgroups::v2;

use super::files::{self, Reader};

/// The figures of the cgroup folder `dir` (files a controller that is not enabled would
/// write read as zero).
pub fn metrics(r: &Reader, dir: &Path) -> v2::Metrics {
    v2::Metrics {
        pids: Some(v2::PidsStat {
            current: r.number(dir, "pids.current"),
            limit: r.number_or(dir, "pids.max", u64::MAX),
        }),
        cpu: Some(cpu(r, dir)),
        memory: Some(memory(r, dir)),
        memory_events: r.has(dir, "memory.events").then(|| memory_events(r, dir)),
        io: Some(v2::IoStat {
            usage: r
                .text(dir, "io.stat")
                .map(|t| parse_io(&t))
                .unwrap_or_default(),
            psi: psi(r, dir, "io.pressure"),
        }),
        rdma: Some(v2::RdmaStat {
            current: r
                .text(dir, "rdma.current")
                .map(|t| parse_rdma(&t))
                .unwrap_or_default(),
            limit: r
                .text(dir, "rdma.max")
                .map(|t| parse_rdma(&t))
                .unwrap_or_default(),
        }),
        hugetlb: hugetlb(r, dir),
    }
}

fn cpu(r: &Reader, dir: &Path) -> v2::CpuStat {
    let stat = r.keyed(dir, "cpu.stat");
    let get = |k: &str| stat.get(k).copied().unwrap_or(0);
    v2::CpuStat {
        usage_usec: get("usage_usec"),
        user_usec: get("user_usec"),
        system_usec: get("system_usec"),
        nr_periods: get("nr_periods"),
        nr_throttled: get("nr_throttled"),
        throttled_usec: get("throttled_usec"),
        psi: psi(r, dir, "cpu.pressure"),
    }
}

fn memory(r: &Reader, dir: &Path) -> v2::MemoryStat {
    let stat = r.keyed(dir, "memory.stat");
    let s = |k: &str| stat.get(k).copied().unwrap_or(0);
    let unlimited = |name: &str| r.number_or(dir, name, u64::MAX);
    v2::MemoryStat {
        anon: s("anon"),
        file: s("file"),
        kernel_stack: s("kernel_stack"),
        slab: s("slab"),
        sock: s("sock"),
        shmem: s("shmem"),
        file_mapped: s("file_mapped"),
        file_dirty: s("file_dirty"),
        file_writeback: s("file_writeback"),
        anon_thp: s("anon_thp"),
        inactive_anon: s("inactive_anon"),
        active_anon: s("active_anon"),
        inactive_file: s("inactive_file"),
        active_file: s("active_file"),
        unevictable: s("unevictable"),
        slab_reclaimable: s("slab_reclaimable"),
        slab_unreclaimable: s("slab_unreclaimable"),
        pgfault: s("pgfault"),
        pgmajfault: s("pgmajfault"),
        workingset_refault: s("workingset_refault"),
        workingset_activate: s("workingset_activate"),
        workingset_nodereclaim: s("workingset_nodereclaim"),
        pgrefill: s("pgrefill"),
        pgscan: s("pgscan"),
        pgsteal: s("pgsteal"),
        pgactivate: s("pgactivate"),
        pgdeactivate: s("pgdeactivate"),
        pglazyfree: s("pglazyfree"),
        pglazyfreed: s("pglazyfreed"),
        thp_fault_alloc: s("thp_fault_alloc"),
        thp_collapse_alloc: s("thp_collapse_alloc"),
        usage: r.number(dir, "memory.current"),
        usage_limit: unlimited("memory.max"),
        swap_usage: r.number(dir, "memory.swap.current"),
        swap_limit: unlimited("memory.swap.max"),
        max_usage: r.number(dir, "memory.peak"),
        swap_max_usage: r.number(dir, "memory.swap.peak"),
        psi: psi(r, dir, "memory.pressure"),
    }
}

fn memory_events(r: &Reader, dir: &Path) -> v2::MemoryEvents {
    let events = r.keyed(dir, "memory.events");
    let get = |k: &str| events.get(k).copied().unwrap_or(0);
    v2::MemoryEvents {
        low: get("low"),
        high: get("high"),
        max: get("max"),
        oom: get("oom"),
        oom_kill: get("oom_kill"),
    }
}

fn hugetlb(r: &Reader, dir: &Path) -> Vec<v2::HugeTlbStat> {
    files::huge_page_sizes()
        .iter()
        .filter(|size| r.has(dir, &format!("hugetlb.{size}.current")))
        .map(|size| v2::HugeTlbStat {
            current: r.number(dir, &format!("hugetlb.{size}.current")),
            max: r.number_or(dir, &format!("hugetlb.{size}.max"), u64::MAX),
            pagesize: size.clone(),
        })
        .collect()
}

/// A pressure file (`some avg10=0.00 avg60=0.00 avg300=0.00 total=0`, then `full ...`);
/// `None` without one (kernels without PSI).
fn psi(r: &Reader, dir: &Path, name: &str) -> Option<v2::PsiStats> {
    r.text(dir, name).map(|t| parse_psi(&t))
}

fn parse_psi(text: &str) -> v2::PsiStats {
    let mut stats = v2::PsiStats::default();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let slot = match words.next() {
            Some("some") => &mut stats.some,
            Some("full") => &mut stats.full,
            _ => continue,
        };
        let mut data = v2::PsiData::default();
        for (key, value) in words.filter_map(|w| w.split_once('=')) {
            match key {
                "avg10" => data.avg10 = value.parse().unwrap_or(0.0),
                "avg60" => data.avg60 = value.parse().unwrap_or(0.0),
                "avg300" => data.avg300 = value.parse().unwrap_or(0.0),
                "total" => data.total = value.parse().unwrap_or(0),
                _ => {}
            }
        }
        *slot = Some(data);
    }
    stats
}

/// `io.stat`: `MAJ:MIN rbytes=N wbytes=N rios=N wios=N dbytes=N dios=N` per device.
fn parse_io(text: &str) -> Vec<v2::IoEntry> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let (major, minor) = files::parse_device(words.next()?)?;
            let mut entry = v2::IoEntry {
                major,
                minor,
                ..Default::default()
            };
            for (key, value) in words.filter_map(|w| w.split_once('=')) {
                let value = value.parse().unwrap_or(0);
                match key {
                    "rbytes" => entry.rbytes = value,
                    "wbytes" => entry.wbytes = value,
                    "rios" => entry.rios = value,
                    "wios" => entry.wios = value,
                    _ => {}
                }
            }
            Some(entry)
        })
        .collect()
}

/// `rdma.current` / `rdma.max`: `DEVICE hca_handle=N hca_object=N` per device (`max` as
/// the largest count).
fn parse_rdma(text: &str) -> Vec<v2::RdmaEntry> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let mut entry = v2::RdmaEntry {
                device: words.next()?.to_owned(),
                ..Default::default()
            };
            for (key, value) in words.filter_map(|w| w.split_once('=')) {
                let value = if value == "max" {
                    u32::MAX
                } else {
                    value.parse().unwrap_or(0)
                };
                match key {
                    "hca_handle" => entry.hca_handles = value,
                    "hca_object" => entry.hca_objects = value,
                    _ => {}
                }
            }
            Some(entry)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name)
    }

    #[test]
    fn a_recorded_folder_without_controllers() {
        let m = metrics(&Reader::default(), &fixture("cgroup-v2-recorded"));
        let cpu = m.cpu.expect("cpu");
        assert_eq!(
            (cpu.usage_usec, cpu.user_usec, cpu.system_usec),
            (220348, 220348, 0)
        );
        assert_eq!(cpu.nr_periods, 0);
        let psi = cpu.psi.expect("cpu.pressure");
        assert_eq!(psi.some.expect("some").total, 427125);
        assert_eq!(psi.full.expect("full").total, 427125);
        assert!(m.memory.expect("memory").psi.is_some());
        assert!(m.io.expect("io").psi.is_some());
        // No memory controller: no memory.events, and files that are not there read as zero.
        assert_eq!(m.memory_events, None);
        assert_eq!(m.pids.expect("pids").current, 0);
        assert!(m.hugetlb.is_empty());
    }

    #[test]
    fn a_folder_with_controllers() {
        let m = metrics(&Reader::default(), &fixture("cgroup-v2-controllers"));
        let cpu = m.cpu.expect("cpu");
        assert_eq!(
            (cpu.usage_usec, cpu.user_usec, cpu.system_usec),
            (88213, 61402, 26811)
        );
        assert_eq!(
            (cpu.nr_periods, cpu.nr_throttled, cpu.throttled_usec),
            (120, 7, 40312)
        );
        let memory = m.memory.expect("memory");
        assert_eq!(
            (memory.anon, memory.file, memory.slab),
            (2379776, 5410816, 495024)
        );
        assert_eq!((memory.pgfault, memory.pgmajfault), (3911, 27));
        assert_eq!(memory.file_mapped, 1134592);
        assert_eq!(
            (memory.usage, memory.usage_limit, memory.max_usage),
            (8531968, 67108864, 9011200)
        );
        assert_eq!((memory.swap_usage, memory.swap_limit), (0, u64::MAX));
        let events = m.memory_events.expect("memory.events");
        assert_eq!((events.max, events.oom, events.oom_kill), (4, 1, 1));
        let pids = m.pids.expect("pids");
        assert_eq!((pids.current, pids.limit), (3, u64::MAX));
        let io = m.io.expect("io").usage;
        assert_eq!(io.len(), 2);
        assert_eq!(
            (io[0].major, io[0].minor, io[0].rbytes, io[0].wios),
            (254, 0, 1159168, 3)
        );
        // Only the page sizes this host offers are read.
        for h in &m.hugetlb {
            match h.pagesize.as_str() {
                "2MB" => assert_eq!((h.current, h.max), (0, u64::MAX)),
                "1GB" => assert_eq!((h.current, h.max), (0, 1 << 30)),
                other => panic!("no {other} files in the fixture"),
            }
        }
    }

    #[test]
    fn pressure_lines() {
        let psi = parse_psi(
            "some avg10=95.04 avg60=90.92 avg300=48.33 total=4175965335\n\
             full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
        );
        let some = psi.some.expect("some");
        assert_eq!(some.avg10, 95.04);
        assert_eq!(some.avg300, 48.33);
        assert_eq!(some.total, 4_175_965_335);
        assert_eq!(psi.full.expect("full").total, 0);
    }

    #[test]
    fn io_and_rdma_lines() {
        let io = parse_io("254:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0\n");
        assert_eq!(
            io,
            vec![v2::IoEntry {
                major: 254,
                minor: 0,
                rbytes: 1,
                wbytes: 2,
                rios: 3,
                wios: 4
            }]
        );
        let rdma = parse_rdma("mlx4_0 hca_handle=2 hca_object=max\n");
        assert_eq!(rdma[0].device, "mlx4_0");
        assert_eq!(rdma[0].hca_handles, 2);
        assert_eq!(rdma[0].hca_objects, u32::MAX);
    }
}
