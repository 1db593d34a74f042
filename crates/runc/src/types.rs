//! What runc reports, as types.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// A container's state, from `runc state` and `runc list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct State {
    /// The OCI spec version of the bundle.
    #[serde(default)]
    pub oci_version: String,
    /// The container id.
    pub id: String,
    /// Pid of the container's init process (0 once stopped).
    #[serde(default)]
    pub pid: i32,
    /// `created`, `running`, `paused` or `stopped`.
    pub status: Status,
    /// The bundle folder.
    #[serde(default)]
    pub bundle: String,
    /// The root filesystem.
    #[serde(default)]
    pub rootfs: String,
    /// When the container was created (RFC 3339).
    #[serde(default)]
    pub created: String,
    /// The owner, for rootless containers.
    #[serde(default)]
    pub owner: String,
    /// The spec's annotations.
    #[serde(default)]
    pub annotations: Option<HashMap<String, String>>,
}

/// A container's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Created, not started.
    Created,
    /// Running.
    Running,
    /// Frozen.
    Paused,
    /// Its init process exited.
    Stopped,
    /// Between states (runc reports this while pausing).
    Pausing,
    /// Anything a newer runc may report.
    #[serde(other)]
    Unknown,
}

/// `runc --version`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Version {
    /// runc's version, such as `1.1.5+ds1`.
    pub runc: String,
    /// The commit line.
    pub commit: String,
    /// The OCI runtime spec version it implements.
    pub spec: String,
}

impl Version {
    pub(crate) fn parse(text: &str) -> Version {
        let mut version = Version::default();
        for line in text.lines() {
            if let Some(v) = line.strip_prefix("runc version ") {
                version.runc = v.trim().to_owned();
            } else if let Some(v) = line.strip_prefix("commit: ") {
                version.commit = v.trim().to_owned();
            } else if let Some(v) = line.strip_prefix("spec: ") {
                version.spec = v.trim().to_owned();
            }
        }
        version
    }
}

/// `runc features`: what this runc supports.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Features {
    /// Oldest OCI spec version supported.
    #[serde(default)]
    pub oci_version_min: String,
    /// Newest OCI spec version supported.
    #[serde(default)]
    pub oci_version_max: String,
    /// Supported hooks.
    #[serde(default)]
    pub hooks: Vec<String>,
    /// Supported mount options.
    #[serde(default)]
    pub mount_options: Vec<String>,
    /// Linux specifics.
    #[serde(default)]
    pub linux: Option<LinuxFeatures>,
    /// runc's own annotations (version, commit, libseccomp, ...).
    #[serde(default)]
    pub annotations: HashMap<String, String>,
}

/// The Linux part of [`Features`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LinuxFeatures {
    /// Supported namespaces.
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// Known capabilities.
    #[serde(default)]
    pub capabilities: Vec<String>,
    /// cgroup support, as runc reports it.
    #[serde(default)]
    pub cgroup: Option<serde_json::Value>,
    /// seccomp support, as runc reports it.
    #[serde(default)]
    pub seccomp: Option<serde_json::Value>,
    /// AppArmor support.
    #[serde(default)]
    pub apparmor: Option<serde_json::Value>,
    /// SELinux support.
    #[serde(default)]
    pub selinux: Option<serde_json::Value>,
}

/// One event from `runc events`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// `stats`, `oom`, `intelrdt` or another kind.
    #[serde(rename = "type")]
    pub kind: String,
    /// The container id.
    pub id: String,
    /// Statistics, for `stats` events.
    #[serde(default)]
    pub data: Option<Stats>,
}

impl Event {
    /// Whether this is an out-of-memory event.
    pub fn is_oom(&self) -> bool {
        self.kind == "oom"
    }
}

/// Resource statistics of a container (the `data` of a `stats` event).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// CPU usage and throttling.
    #[serde(default)]
    pub cpu: Cpu,
    /// Memory usage.
    #[serde(default)]
    pub memory: Memory,
    /// Process counts.
    #[serde(default)]
    pub pids: Pids,
    /// Block I/O.
    #[serde(default)]
    pub blkio: Blkio,
    /// Huge page usage by page size.
    #[serde(default)]
    pub hugetlb: HashMap<String, Hugetlb>,
}

/// CPU statistics.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Cpu {
    /// Time used.
    #[serde(default)]
    pub usage: CpuUsage,
    /// Throttling by the CFS quota.
    #[serde(default)]
    pub throttling: Throttling,
}

/// CPU time, in nanoseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CpuUsage {
    /// Total time.
    #[serde(default)]
    pub total: u64,
    /// Time per CPU.
    #[serde(default)]
    pub percpu: Vec<u64>,
    /// Time in kernel mode.
    #[serde(default)]
    pub kernel: u64,
    /// Time in user mode.
    #[serde(default)]
    pub user: u64,
}

/// CFS throttling.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Throttling {
    /// Enforcement periods.
    #[serde(default)]
    pub periods: u64,
    /// Periods in which the group was throttled.
    #[serde(default, rename = "throttledPeriods")]
    pub throttled_periods: u64,
    /// Total time throttled, in nanoseconds.
    #[serde(default, rename = "throttledTime")]
    pub throttled_time: u64,
}

/// Memory statistics.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Memory {
    /// Page cache.
    #[serde(default)]
    pub cache: u64,
    /// Memory.
    #[serde(default)]
    pub usage: MemoryEntry,
    /// Memory and swap.
    #[serde(default)]
    pub swap: MemoryEntry,
    /// Kernel memory.
    #[serde(default)]
    pub kernel: MemoryEntry,
    /// The raw counters of `memory.stat`.
    #[serde(default)]
    pub raw: HashMap<String, u64>,
}

/// One memory counter.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MemoryEntry {
    /// Limit in bytes.
    #[serde(default)]
    pub limit: u64,
    /// Usage in bytes.
    #[serde(default)]
    pub usage: u64,
    /// Highest usage in bytes.
    #[serde(default)]
    pub max: u64,
    /// Times the limit was hit.
    #[serde(default)]
    pub failcnt: u64,
}

/// Process counts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Pids {
    /// Processes now.
    #[serde(default)]
    pub current: u64,
    /// The limit (0 for none).
    #[serde(default)]
    pub limit: u64,
}

/// Block I/O statistics.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Blkio {
    /// Bytes transferred, by device and operation.
    #[serde(default, rename = "ioServiceBytesRecursive")]
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
    /// Operations, by device and operation.
    #[serde(default, rename = "ioServicedRecursive")]
    pub io_serviced_recursive: Vec<BlkioEntry>,
}

/// One block I/O counter.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BlkioEntry {
    /// Device major number.
    #[serde(default)]
    pub major: u64,
    /// Device minor number.
    #[serde(default)]
    pub minor: u64,
    /// `Read`, `Write`, `Sync`, `Async`, `Discard` or `Total`.
    #[serde(default)]
    pub op: String,
    /// The count.
    #[serde(default)]
    pub value: u64,
}

/// Huge page usage of one page size.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Hugetlb {
    /// Usage in bytes.
    #[serde(default)]
    pub usage: u64,
    /// Highest usage in bytes.
    #[serde(default)]
    pub max: u64,
    /// Times the limit was hit.
    #[serde(default)]
    pub failcnt: u64,
}
