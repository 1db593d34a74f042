//! `Stats`: a container's cgroup figures as the metrics type of the host's cgroup version
//! (`io.containerd.cgroups.v1.Metrics` on cgroup v1 hosts, `v2.Metrics` on unified ones).

use std::collections::HashMap;
use std::path::Path;

use ctrd_api::TypeUrl;
use ctrd_api::io::containerd::cgroups::{v1, v2};
use ctrd_api::prost_types::Any;
use ctrd_runc::Stats;

/// Whether this host runs the unified (v2) cgroup hierarchy.
pub fn unified_host() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// The figures runc reports, packed as the host's metrics type.
pub fn metrics(stats: &Stats, unified: bool) -> Any {
    if unified {
        v2_metrics(stats).to_any()
    } else {
        v1_metrics(stats).to_any()
    }
}

fn raw<'a>(stats: &'a Stats) -> impl Fn(&str) -> u64 + 'a {
    let raw: &'a HashMap<String, u64> = &stats.memory.raw;
    move |key| raw.get(key).copied().unwrap_or(0)
}

fn v1_entry(e: &ctrd_runc::MemoryEntry) -> v1::MemoryEntry {
    v1::MemoryEntry {
        limit: e.limit,
        usage: e.usage,
        max: e.max,
        failcnt: e.failcnt,
    }
}

fn v1_metrics(stats: &Stats) -> v1::Metrics {
    let r = raw(stats);
    let blkio = |entries: &[ctrd_runc::BlkioEntry]| {
        entries
            .iter()
            .map(|e| v1::BlkIoEntry {
                op: e.op.clone(),
                device: String::new(),
                major: e.major,
                minor: e.minor,
                value: e.value,
            })
            .collect()
    };
    v1::Metrics {
        pids: Some(v1::PidsStat {
            current: stats.pids.current,
            limit: stats.pids.limit,
        }),
        cpu: Some(v1::CpuStat {
            usage: Some(v1::CpuUsage {
                total: stats.cpu.usage.total,
                kernel: stats.cpu.usage.kernel,
                user: stats.cpu.usage.user,
                per_cpu: stats.cpu.usage.percpu.clone(),
            }),
            throttling: Some(v1::Throttle {
                periods: stats.cpu.throttling.periods,
                throttled_periods: stats.cpu.throttling.throttled_periods,
                throttled_time: stats.cpu.throttling.throttled_time,
            }),
        }),
        memory: Some(v1::MemoryStat {
            cache: stats.memory.cache,
            rss: r("rss"),
            rss_huge: r("rss_huge"),
            mapped_file: r("mapped_file"),
            dirty: r("dirty"),
            writeback: r("writeback"),
            pg_pg_in: r("pgpgin"),
            pg_pg_out: r("pgpgout"),
            pg_fault: r("pgfault"),
            pg_maj_fault: r("pgmajfault"),
            inactive_anon: r("inactive_anon"),
            active_anon: r("active_anon"),
            inactive_file: r("inactive_file"),
            active_file: r("active_file"),
            unevictable: r("unevictable"),
            hierarchical_memory_limit: r("hierarchical_memory_limit"),
            hierarchical_swap_limit: r("hierarchical_memsw_limit"),
            total_cache: r("total_cache"),
            total_rss: r("total_rss"),
            total_rss_huge: r("total_rss_huge"),
            total_mapped_file: r("total_mapped_file"),
            total_dirty: r("total_dirty"),
            total_writeback: r("total_writeback"),
            total_pg_pg_in: r("total_pgpgin"),
            total_pg_pg_out: r("total_pgpgout"),
            total_pg_fault: r("total_pgfault"),
            total_pg_maj_fault: r("total_pgmajfault"),
            total_inactive_anon: r("total_inactive_anon"),
            total_active_anon: r("total_active_anon"),
            total_inactive_file: r("total_inactive_file"),
            total_active_file: r("total_active_file"),
            total_unevictable: r("total_unevictable"),
            usage: Some(v1_entry(&stats.memory.usage)),
            swap: Some(v1_entry(&stats.memory.swap)),
            kernel: Some(v1_entry(&stats.memory.kernel)),
            kernel_tcp: None,
        }),
        blkio: Some(v1::BlkIoStat {
            io_service_bytes_recursive: blkio(&stats.blkio.io_service_bytes_recursive),
            io_serviced_recursive: blkio(&stats.blkio.io_serviced_recursive),
            ..Default::default()
        }),
        hugetlb: stats
            .hugetlb
            .iter()
            .map(|(size, h)| v1::HugetlbStat {
                usage: h.usage,
                max: h.max,
                failcnt: h.failcnt,
                pagesize: size.clone(),
            })
            .collect(),
        ..Default::default()
    }
}

fn v2_metrics(stats: &Stats) -> v2::Metrics {
    let r = raw(stats);
    v2::Metrics {
        pids: Some(v2::PidsStat {
            current: stats.pids.current,
            limit: stats.pids.limit,
        }),
        cpu: Some(v2::CpuStat {
            usage_usec: stats.cpu.usage.total / 1000,
            user_usec: stats.cpu.usage.user / 1000,
            system_usec: stats.cpu.usage.kernel / 1000,
            nr_periods: stats.cpu.throttling.periods,
            nr_throttled: stats.cpu.throttling.throttled_periods,
            throttled_usec: stats.cpu.throttling.throttled_time / 1000,
            psi: None,
        }),
        memory: Some(v2::MemoryStat {
            anon: r("anon"),
            file: r("file"),
            kernel_stack: r("kernel_stack"),
            slab: r("slab"),
            sock: r("sock"),
            shmem: r("shmem"),
            file_mapped: r("file_mapped"),
            file_dirty: r("file_dirty"),
            file_writeback: r("file_writeback"),
            anon_thp: r("anon_thp"),
            inactive_anon: r("inactive_anon"),
            active_anon: r("active_anon"),
            inactive_file: r("inactive_file"),
            active_file: r("active_file"),
            unevictable: r("unevictable"),
            slab_reclaimable: r("slab_reclaimable"),
            slab_unreclaimable: r("slab_unreclaimable"),
            pgfault: r("pgfault"),
            pgmajfault: r("pgmajfault"),
            usage: stats.memory.usage.usage,
            usage_limit: stats.memory.usage.limit,
            swap_usage: stats.memory.swap.usage,
            swap_limit: stats.memory.swap.limit,
            max_usage: stats.memory.usage.max,
            ..Default::default()
        }),
        ..Default::default()
    }
}
