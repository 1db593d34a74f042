//! Kubernetes' CRI plugin in a private daemon: its configuration in containerd 1.6 and 2.x
//! syntax, runtime handlers, and a CNI bridge network of its own.
//!
//! The CRI plugin is built into Debian's daemons; the test bed disables it unless a test asks
//! for it with [`DaemonOptions::cri`](crate::DaemonOptions::cri). Everything it writes stays
//! in the daemon's private folder: its state (network namespaces included, with
//! `netns_mounts_under_state_dir`), its CNI configuration and IP allocations. Only the bridge
//! interface is host-wide; it has a name of its own and no address (`isGateway: false`, no
//! masquerading), so pods get private network namespaces without touching the host's routes,
//! iptables or sysctls, and it is deleted with the daemon.

use std::path::{Path, PathBuf};

use crate::{Daemon, Error};

/// The pause image pods' sandbox containers run, built offline by
/// [`ImageArchive::pause`](crate::ImageArchive::pause) (the name containerd 2.x uses by default).
pub const PAUSE_IMAGE: &str = "registry.k8s.io/pause:3.10";

/// The namespace the CRI plugin keeps its images, containers and tasks in.
pub const CRI_NAMESPACE: &str = "k8s.io";

/// Where Debian's `containernetworking-plugins` puts the CNI plugins.
pub const CNI_BIN_DIR: &str = "/usr/lib/cni";

/// A runtime handler: what a pod names in `RunPodSandboxRequest.runtime_handler`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeHandler {
    /// The handler's name.
    pub name: String,
    /// Its runtime type: `io.containerd.NAME.v2` runs `containerd-shim-NAME-v2` from the
    /// daemon's `PATH`.
    pub runtime_type: String,
    /// Its `options` table, as TOML `key = value` pairs (values written as TOML, such as
    /// `"true"` or `"\"/usr/bin/runc\""`). containerd 1.6 hands them only to `io.containerd.runc.*`
    /// runtime types.
    pub options: Vec<(String, String)>,
    /// The snapshotter its containers' root filesystems come from (the daemon's default when
    /// `None`); containerd 1.7 and 2.x.
    pub snapshotter: Option<String>,
}

impl RuntimeHandler {
    /// `runc`: runtime type `io.containerd.runc.v2`, served by whichever
    /// `containerd-shim-runc-v2` comes first on the daemon's `PATH` (the daemon's own Go shim,
    /// or ours when [`OurShim`](crate::OurShim)'s folder is put first).
    pub fn runc() -> RuntimeHandler {
        RuntimeHandler::new("runc", "io.containerd.runc.v2")
    }

    /// `ctrd`: runtime type `io.containerd.ctrd.v2`, served by our shim as
    /// `containerd-shim-ctrd-v2` ([`OurShim::build_as`](crate::OurShim::build_as)).
    pub fn ctrd() -> RuntimeHandler {
        RuntimeHandler::new("ctrd", "io.containerd.ctrd.v2")
    }

    /// A handler of this name and runtime type, without options.
    pub fn new(name: &str, runtime_type: &str) -> RuntimeHandler {
        RuntimeHandler {
            name: name.into(),
            runtime_type: runtime_type.into(),
            options: Vec::new(),
            snapshotter: None,
        }
    }

    /// The same handler with its containers' root filesystems from `snapshotter` (a proxy
    /// plugin's name, say).
    pub fn snapshotter(mut self, snapshotter: &str) -> RuntimeHandler {
        self.snapshotter = Some(snapshotter.into());
        self
    }

    /// The same handler with `key = value` added to its options.
    pub fn option(mut self, key: &str, value: &str) -> RuntimeHandler {
        self.options.push((key.into(), value.into()));
        self
    }
}

/// The CRI plugin's configuration in a test daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CriConfig {
    /// The runtime handlers; the first is the default (a pod naming no handler gets it).
    pub handlers: Vec<RuntimeHandler>,
    /// The image sandbox containers run.
    pub sandbox_image: String,
    /// A `certs.d`-style folder of per-registry host configuration (`config_path`), for pulls
    /// from a registry the test runs.
    pub registry_config_path: Option<PathBuf>,
    /// Whether the host reaches pods: see [`PodNetwork`].
    pub pod_network: PodNetwork,
}

/// How a CRI daemon's pods are networked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PodNetwork {
    /// Pods on a private bridge without an address: their own network namespaces and
    /// nothing of the host touched, but the host cannot reach them.
    #[default]
    Private,
    /// As kubelet's nodes have it: the bridge is the pods' gateway (10.251.0.1/16, a route on
    /// the host), and CNI's `portmap` plugin maps host ports (iptables NAT rules, localhost
    /// included), so the host reaches pods by address and by host port. The bridge plugin
    /// turns on `net.ipv4.ip_forward` and portmap adds its `CNI-HOSTPORT-*` chains; the daemon
    /// restores both when it stops (its `HostNetworkGuard`).
    Routed,
}

impl Default for CriConfig {
    /// Handlers `runc` (the default) and `ctrd`, the offline pause image.
    fn default() -> CriConfig {
        CriConfig {
            handlers: vec![RuntimeHandler::runc(), RuntimeHandler::ctrd()],
            sandbox_image: PAUSE_IMAGE.into(),
            registry_config_path: None,
            pod_network: PodNetwork::Private,
        }
    }
}

impl CriConfig {
    /// The configuration tables for `daemon`, whose private folder is `dir`.
    pub(crate) fn render(&self, daemon: Daemon, dir: &Path) -> String {
        let d = dir.display();
        let default = self.handlers.first().map_or("runc", |h| h.name.as_str());
        // 1.x has one CRI plugin; 2.x splits it in three (server, runtime, images). In 1.x the
        // three are one table, so keys are gathered per table before writing.
        let (server, runtime, images) = if daemon.is_v2() {
            (
                "io.containerd.grpc.v1.cri",
                "io.containerd.cri.v1.runtime",
                "io.containerd.cri.v1.images",
            )
        } else {
            (
                "io.containerd.grpc.v1.cri",
                "io.containerd.grpc.v1.cri",
                "io.containerd.grpc.v1.cri",
            )
        };
        let mut tables = Tables::default();
        let server = format!("plugins.{server:?}");
        let runtime = format!("plugins.{runtime:?}");
        let images = format!("plugins.{images:?}");
        tables.set(&server, "stream_server_address", "\"127.0.0.1\"");
        tables.set(&server, "stream_server_port", "\"0\"");
        tables.set(&runtime, "restrict_oom_score_adj", "true");
        tables.set(&runtime, "netns_mounts_under_state_dir", "true");
        let cni = format!("{runtime}.cni");
        if daemon.is_v2() {
            tables.set(&cni, "bin_dirs", &format!("[{CNI_BIN_DIR:?}]"));
        } else {
            tables.set(&cni, "bin_dir", &format!("{CNI_BIN_DIR:?}"));
        }
        tables.set(&cni, "conf_dir", &format!("\"{d}/cni\""));
        tables.set(&cni, "max_conf_num", "1");
        let containerd = format!("{runtime}.containerd");
        tables.set(&containerd, "default_runtime_name", &format!("{default:?}"));
        for handler in &self.handlers {
            let table = format!("{containerd}.runtimes.{:?}", handler.name);
            tables.set(
                &table,
                "runtime_type",
                &format!("{:?}", handler.runtime_type),
            );
            if let Some(snapshotter) = &handler.snapshotter {
                tables.set(&table, "snapshotter", &format!("{snapshotter:?}"));
            }
            for (key, value) in &handler.options {
                tables.set(&format!("{table}.options"), key, value);
            }
        }
        let sandbox = format!("{:?}", self.sandbox_image);
        if daemon.is_v2() {
            tables.set(&images, "snapshotter", "\"overlayfs\"");
            tables.set(&format!("{images}.pinned_images"), "sandbox", &sandbox);
        } else {
            tables.set(&containerd, "snapshotter", "\"overlayfs\"");
            tables.set(&images, "sandbox_image", &sandbox);
        }
        if let Some(path) = &self.registry_config_path {
            let value = format!("{:?}", path.display().to_string());
            tables.set(&format!("{images}.registry"), "config_path", &value);
        }
        tables.render()
    }

    /// Writes the CNI network for a daemon whose private folder is `dir`: a bridge named
    /// [`bridge_name`] with host-local addresses kept in the folder (and `portmap` for a
    /// [`PodNetwork::Routed`] network).
    pub(crate) fn write_cni(&self, dir: &Path) -> Result<(), Error> {
        let conf_dir = dir.join("cni");
        std::fs::create_dir_all(&conf_dir).map_err(|e| Error::io(&conf_dir, e))?;
        let routed = self.pod_network == PodNetwork::Routed;
        let subnet = if routed {
            "10.251.0.0/16"
        } else {
            "10.250.0.0/16"
        };
        let mut plugins = vec![serde_json::json!({
            "type": "bridge",
            "bridge": bridge_name(dir),
            "isGateway": routed,
            "ipMasq": false,
            "ipam": {
                "type": "host-local",
                "ranges": [[{ "subnet": subnet }]],
                "dataDir": dir.join("cni-ipam").display().to_string(),
            },
        })];
        if routed {
            plugins.push(serde_json::json!({
                "type": "portmap",
                "capabilities": { "portMappings": true },
            }));
        }
        let conflist = serde_json::json!({
            "cniVersion": "1.0.0",
            "name": "ctrd-test",
            "plugins": plugins,
        });
        let path = conf_dir.join("10-ctrd-test.conflist");
        std::fs::write(&path, conflist.to_string()).map_err(|e| Error::io(&path, e))
    }

    /// Deletes the bridge a daemon's pods used, if any.
    pub(crate) fn remove_bridge(dir: &Path) {
        let name = bridge_name(dir);
        if Path::new("/sys/class/net").join(&name).exists() {
            let _ = std::process::Command::new("ip")
                .args(["link", "delete", &name])
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
}

/// What a [`PodNetwork::Routed`] network changes on the host, recorded before its daemon
/// starts and put back when it stops: `net.ipv4.ip_forward`, and the `CNI-HOSTPORT-*` chains of
/// iptables' NAT table (with the rules jumping to them) when none existed before.
#[derive(Debug)]
pub(crate) struct HostNetworkGuard {
    ip_forward: Option<String>,
    hostport_chains_before: bool,
}

const IP_FORWARD: &str = "/proc/sys/net/ipv4/ip_forward";

impl HostNetworkGuard {
    pub(crate) fn record() -> HostNetworkGuard {
        HostNetworkGuard {
            ip_forward: std::fs::read_to_string(IP_FORWARD).ok(),
            hostport_chains_before: nat_rules().iter().any(|r| r.contains("CNI-HOSTPORT-")),
        }
    }

    pub(crate) fn restore(&self) {
        if let Some(value) = &self.ip_forward
            && std::fs::read_to_string(IP_FORWARD).ok().as_ref() != Some(value)
        {
            let _ = std::fs::write(IP_FORWARD, value);
        }
        if self.hostport_chains_before {
            return;
        }
        // Jumps from the built-in chains first (`-S` quotes as a shell does), then portmap's
        // own chains, emptied and gone.
        let rules = nat_rules();
        for rule in &rules {
            if let Some(spec) = rule.strip_prefix("-A ")
                && !spec.starts_with("CNI-")
                && spec.contains("-j CNI-")
            {
                let _ = std::process::Command::new("sh")
                    .arg("-c")
                    .arg(format!("iptables -t nat -D {spec}"))
                    .stderr(std::process::Stdio::null())
                    .status();
            }
        }
        for flag in ["-F", "-X"] {
            for rule in &rules {
                if let Some(chain) = rule.strip_prefix("-N ")
                    && chain.starts_with("CNI-")
                {
                    iptables(&["-t", "nat", flag, chain]);
                }
            }
        }
    }
}

/// `iptables -t nat -S`, one rule a line (empty without iptables).
fn nat_rules() -> Vec<String> {
    std::process::Command::new("iptables")
        .args(["-t", "nat", "-S"])
        .stderr(std::process::Stdio::null())
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn iptables(args: &[&str]) {
    let _ = std::process::Command::new("iptables")
        .args(args)
        .stderr(std::process::Stdio::null())
        .status();
}

/// TOML tables in the order first named, each with its `key = value` lines.
#[derive(Default)]
struct Tables(Vec<(String, Vec<String>)>);

impl Tables {
    fn set(&mut self, table: &str, key: &str, value: &str) {
        let line = format!("{key} = {value}");
        match self.0.iter_mut().find(|(name, _)| name == table) {
            Some((_, lines)) => lines.push(line),
            None => self.0.push((table.to_owned(), vec![line])),
        }
    }

    fn render(&self) -> String {
        self.0
            .iter()
            .map(|(name, lines)| format!("\n[{name}]\n  {}\n", lines.join("\n  ")))
            .collect()
    }
}

/// The bridge interface of the daemon whose private folder is `dir`: `ctrd` and the folder's
/// random suffix (interface names are at most 15 bytes).
pub fn bridge_name(dir: &Path) -> String {
    let suffix: String = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
        .chars()
        .rev()
        .filter(char::is_ascii_alphanumeric)
        .take(10)
        .collect();
    format!("ctrd{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bridge_names_fit_the_kernel_limit() {
        let name = bridge_name(Path::new("/tmp/ctrd-AbCdEfGhIjKlMn"));
        assert!(name.len() <= 15, "{name}");
        assert!(name.starts_with("ctrd"), "{name}");
    }

    #[test]
    fn handlers_and_options_reach_both_syntaxes() {
        let config = CriConfig {
            handlers: vec![
                RuntimeHandler::runc().option("BinaryName", "\"/usr/bin/runc\""),
                RuntimeHandler::ctrd(),
            ],
            ..CriConfig::default()
        };
        let old = config.render(Daemon::Bookworm, Path::new("/d"));
        assert!(old.contains("[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.\"runc\".options]\n  BinaryName = \"/usr/bin/runc\""), "{old}");
        assert!(
            old.contains("sandbox_image = \"registry.k8s.io/pause:3.10\""),
            "{old}"
        );
        let new = config.render(Daemon::Sid, Path::new("/d"));
        assert!(new.contains("[plugins.\"io.containerd.cri.v1.runtime\".containerd.runtimes.\"ctrd\"]\n  runtime_type = \"io.containerd.ctrd.v2\""), "{new}");
        assert!(
            new.contains("pinned_images]\n  sandbox = \"registry.k8s.io/pause:3.10\""),
            "{new}"
        );
        assert!(new.contains("bin_dirs = [\"/usr/lib/cni\"]"), "{new}");
    }

    #[test]
    fn a_handler_names_its_snapshotter() {
        let config = CriConfig {
            handlers: vec![RuntimeHandler::ctrd().snapshotter("ctrd-overlay")],
            ..CriConfig::default()
        };
        let new = config.render(Daemon::Upstream, Path::new("/d"));
        assert!(
            new.contains(
                "runtime_type = \"io.containerd.ctrd.v2\"\n  snapshotter = \"ctrd-overlay\""
            ),
            "{new}"
        );
    }

    #[test]
    fn registry_hosts_reach_both_syntaxes() {
        let config = CriConfig {
            registry_config_path: Some("/certs.d".into()),
            ..CriConfig::default()
        };
        let old = config.render(Daemon::Bookworm, Path::new("/d"));
        assert!(
            old.contains(
                "[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"/certs.d\""
            ),
            "{old}"
        );
        let new = config.render(Daemon::Upstream, Path::new("/d"));
        assert!(
            new.contains(
                "[plugins.\"io.containerd.cri.v1.images\".registry]\n  config_path = \"/certs.d\""
            ),
            "{new}"
        );
    }
}
