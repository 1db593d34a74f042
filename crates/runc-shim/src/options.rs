//! The runc options containerd passes in `Create` (`containerd.runc.v1.Options`), and the
//! runc handle they select.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use ctrd_api::TypeUrl;
use ctrd_api::containerd::runc::v1::Options;
use ctrd_api::prost_types::Any;
use ctrd_runc::{AsyncRunc, LogFormat, ProcessMonitor, Runc, Started};
use ctrd_shim::Reaper;

/// runc's state root for containerd's shims; the namespace is appended.
pub const RUNC_ROOT: &str = "/run/containerd/runc";
/// Where the options are kept in the bundle, for the `delete` action of a dead shim.
const OPTIONS_FILE: &str = "options.json";

/// The options in `any`, or the defaults when absent or of another type (CRI's runtime
/// options, for one, carry only a config path).
pub fn decode(any: Option<&Any>) -> Options {
    match any {
        Some(any) if any.type_url.ends_with(Options::TYPE_URL) => Options::from_any(any)
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, "malformed runc options; using defaults");
                Options::default()
            }),
        _ => Options::default(),
    }
}

/// runc's state root for `namespace` under these options.
pub fn runc_root(options: &Options, namespace: &str) -> PathBuf {
    let root = if options.root.is_empty() {
        PathBuf::from(RUNC_ROOT)
    } else {
        PathBuf::from(&options.root)
    };
    root.join(namespace)
}

/// The runc handle for a container: binary, root and cgroup driver from the options, its JSON
/// log in the bundle, SIGKILL when the shim dies, and the reaper as its process monitor.
pub fn runc(
    options: &Options,
    namespace: &str,
    bundle: &Path,
    reaper: Option<&Reaper>,
) -> AsyncRunc {
    let binary = if options.binary_name.is_empty() {
        "runc"
    } else {
        options.binary_name.as_str()
    };
    let mut builder = Runc::builder()
        .binary(binary)
        .root(runc_root(options, namespace))
        .systemd_cgroup(options.systemd_cgroup)
        .log(bundle.join("log.json"), LogFormat::Json)
        // As the Go shim: a shim that dies takes the runc commands it was running with it.
        // (The serving shim runs one thread, which starts every runc.)
        .parent_death_signal(nix::sys::signal::Signal::SIGKILL);
    if let Some(reaper) = reaper {
        builder = builder.monitor(Arc::new(ReaperMonitor(reaper.clone())));
    }
    builder.build().to_async()
}

/// The shim's reaper as runc's process monitor: the exit of each runc command goes to the call
/// that started it, never to the exit subscriptions, so runc's exits are never stolen.
#[derive(Debug)]
struct ReaperMonitor(Reaper);

impl ProcessMonitor for ReaperMonitor {
    fn start(&self, command: &mut Command) -> std::io::Result<Started> {
        let (child, exit) = self.0.spawn(command)?;
        Ok(Started { child, exit })
    }
}

/// Keeps the options in the bundle (as JSON of the fields `delete` needs).
pub fn save(options: &Options, bundle: &Path) -> std::io::Result<()> {
    let json = serde_json::json!({
        "binary_name": options.binary_name,
        "root": options.root,
        "systemd_cgroup": options.systemd_cgroup,
    });
    std::fs::write(bundle.join(OPTIONS_FILE), json.to_string())
}

/// The options saved in the bundle, or the defaults.
pub fn load(bundle: &Path) -> Options {
    let Ok(text) = std::fs::read_to_string(bundle.join(OPTIONS_FILE)) else {
        return Options::default();
    };
    let json: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    Options {
        binary_name: json["binary_name"].as_str().unwrap_or_default().to_owned(),
        root: json["root"].as_str().unwrap_or_default().to_owned(),
        systemd_cgroup: json["systemd_cgroup"].as_bool().unwrap_or_default(),
        ..Default::default()
    }
}
