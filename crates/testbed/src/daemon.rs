//! Private containerd daemons.

use std::ffi::OsString;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::cri::{CriConfig, HostNetworkGuard, PodNetwork};
use crate::{Error, ImageArchive, cleanup, repo_root};

/// Which containerd to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Daemon {
    /// Debian bookworm's containerd 1.6.20, installed with apt.
    Bookworm,
    /// Debian trixie's containerd 1.7.24, unpacked by `scripts/setup-testbed.sh --with-1.7`.
    Trixie,
    /// Debian sid's containerd 2.1.9, unpacked by `scripts/setup-testbed.sh`.
    Sid,
    /// containerd 2.4.2, built from the Go module proxy by `scripts/setup-testbed.sh` (the
    /// newest release; answers shims with the 2.3+ bootstrap protocol).
    Upstream,
}

impl Daemon {
    /// Every daemon the test bed knows.
    pub const ALL: [Daemon; 4] = [
        Daemon::Bookworm,
        Daemon::Trixie,
        Daemon::Sid,
        Daemon::Upstream,
    ];

    /// Short version label, such as `1.6`.
    pub fn version(self) -> &'static str {
        match self {
            Daemon::Bookworm => "1.6",
            Daemon::Trixie => "1.7",
            Daemon::Sid => "2.1",
            Daemon::Upstream => "2.4",
        }
    }

    /// The daemons tests run against: `CTRD_TEST_DAEMONS` (comma-separated versions such as
    /// `1.6,2.1,2.4,1.7`), by default 1.6, 2.1 and 2.4.
    pub fn selected() -> Vec<Daemon> {
        match std::env::var("CTRD_TEST_DAEMONS") {
            Ok(list) if !list.trim().is_empty() => Daemon::ALL
                .into_iter()
                .filter(|d| list.split(',').any(|v| v.trim() == d.version()))
                .collect(),
            _ => vec![Daemon::Bookworm, Daemon::Sid, Daemon::Upstream],
        }
    }

    /// Whether this is containerd 2.x (config version 3, task API v3).
    pub fn is_v2(self) -> bool {
        matches!(self, Daemon::Sid | Daemon::Upstream)
    }

    /// Folder holding this daemon's `containerd`, `ctr` and Go shim.
    pub fn bin_dir(self) -> PathBuf {
        let (var, default) = match self {
            Daemon::Bookworm => ("CTRD_CONTAINERD_1_6_BIN", PathBuf::from("/usr/bin")),
            Daemon::Trixie => (
                "CTRD_CONTAINERD_1_7_BIN",
                repo_root().join(".testbed/containerd-1.7/usr/bin"),
            ),
            Daemon::Sid => (
                "CTRD_CONTAINERD_2_1_BIN",
                repo_root().join(".testbed/containerd-2.1/usr/bin"),
            ),
            Daemon::Upstream => (
                "CTRD_CONTAINERD_2_4_BIN",
                repo_root().join(".testbed/containerd-2.4/usr/bin"),
            ),
        };
        std::env::var_os(var).map_or(default, PathBuf::from)
    }

    fn program(self, name: &str) -> Result<PathBuf, Error> {
        let path = self.bin_dir().join(name);
        if path.is_file() {
            Ok(path)
        } else {
            Err(Error::Missing {
                what: format!("{name} of containerd {}", self.version()),
                path,
            })
        }
    }

    fn config(self, dir: &Path, proxies: &[ProxyPlugin], cri: Option<&CriConfig>) -> String {
        let d = dir.display();
        let mut common = format!(
            "root = \"{d}/root\"\nstate = \"{d}/state\"\n\n[grpc]\n  address = \"{d}/c.sock\"\n\n\
             [ttrpc]\n  address = \"{d}/c.sock.ttrpc\"\n\n[debug]\n  level = \"info\"\n"
        );
        // The same table in config version 2 (1.x) and 3 (2.x).
        for proxy in proxies {
            common.push_str(&format!(
                "\n[proxy_plugins.{:?}]\n  type = \"snapshot\"\n  address = {:?}\n",
                proxy.name,
                proxy.address.display().to_string()
            ));
            // Written only when asked for, and only for 2.x: 1.x knows no such key (and
            // has no parallel unpack to declare `rebase` for).
            if self.is_v2() && !proxy.capabilities.is_empty() {
                common.push_str(&format!("  capabilities = {:?}\n", proxy.capabilities));
            }
        }
        if self.is_v2() && !proxies.is_empty() {
            // 2.x unpacks a pull's layers in parallel (onto snapshotters declaring `rebase`)
            // only with more than one unpack allowed; its default is 1. Imports are always
            // unpacked one layer after the other.
            if proxies
                .iter()
                .any(|p| p.capabilities.iter().any(|c| c == "rebase"))
            {
                common.push_str(&format!(
                    "\n[plugins.\"io.containerd.transfer.v1.local\"]\n  \
                     max_concurrent_unpacks = {PARALLEL_UNPACKS}\n"
                ));
            }
            // 2.x unpacks imports in its transfer service, only onto snapshotters listed
            // here (by default only the built-in overlayfs).
            let platform = format!("linux/{}", crate::image::oci_arch());
            for snapshotter in
                std::iter::once("overlayfs").chain(proxies.iter().map(|p| p.name.as_str()))
            {
                common.push_str(&format!(
                    "\n[[plugins.\"io.containerd.transfer.v1.local\".unpack_config]]\n  \
                     platform = {platform:?}\n  snapshotter = {snapshotter:?}\n"
                ));
            }
        }
        // CRI is disabled unless asked for; NRI always (1.7 and 2.x; nothing here uses it).
        let mut disabled: Vec<&str> = Vec::new();
        if cri.is_none() {
            disabled.push("io.containerd.grpc.v1.cri");
            if self.is_v2() {
                disabled.extend([
                    "io.containerd.cri.v1.images",
                    "io.containerd.cri.v1.runtime",
                ]);
            }
        }
        if self != Daemon::Bookworm {
            disabled.push("io.containerd.nri.v1.nri");
        }
        let version = if self.is_v2() { 3 } else { 2 };
        let mut config = format!("version = {version}\ndisabled_plugins = {disabled:?}\n{common}");
        if let Some(cri) = cri {
            config.push_str(&cri.render(self, dir));
        }
        // 2.4 sends its shims a socket folder of the operator's choosing in the bootstrap
        // parameters: a private one here, so a shim that ignores it is caught.
        if self == Daemon::Upstream {
            config.push_str(&format!(
                "\n[plugins.\"io.containerd.shim.v1.manager\"]\n  socket_dir = \"{d}/{SOCKET_DIR_NAME}\"\n"
            ));
        }
        config
    }
}

/// Layers a 2.x daemon unpacks at once in a pull when a proxy snapshotter declares
/// `rebase` (containerd's CRI uses 3 when it unpacks an image for a runtime's snapshotter).
pub const PARALLEL_UNPACKS: u32 = 3;

/// The folder, in a daemon's private folder, that containerd 2.4 tells shims to put their
/// sockets in.
const SOCKET_DIR_NAME: &str = "s";

/// An external snapshotter containerd loads as `[proxy_plugins.NAME]` (`type = "snapshot"`).
#[derive(Debug, Clone)]
pub struct ProxyPlugin {
    /// The name `--snapshotter` selects it by.
    pub name: String,
    /// Its gRPC socket.
    pub address: PathBuf,
    /// What containerd 2.x may assume it does (`capabilities`), such as `remap-ids`: it
    /// honours the uid/gid mapping labels itself, so containerd hands them on instead of
    /// chowning a copy of the image (user-namespace pods). Not written when empty.
    pub capabilities: Vec<String>,
}

impl ProxyPlugin {
    /// A snapshotter called `name` served on `address`, without capabilities.
    pub fn snapshot(name: &str, address: &Path) -> ProxyPlugin {
        ProxyPlugin {
            name: name.into(),
            address: address.to_path_buf(),
            capabilities: Vec::new(),
        }
    }

    /// The same plugin declaring `rebase` to containerd 2.x (ignored on 1.x): it commits an
    /// active snapshot onto a parent named only in `Commit`, so containerd may unpack a pull's
    /// layers in parallel onto it (the daemon then allows [`PARALLEL_UNPACKS`] at once).
    pub fn rebase(self) -> ProxyPlugin {
        self.capability("rebase")
    }

    /// The same plugin with `capability` added.
    pub fn capability(mut self, capability: &str) -> ProxyPlugin {
        self.capabilities.push(capability.into());
        self
    }
}

/// What a test adds to a daemon.
#[derive(Debug, Clone, Default)]
pub struct DaemonOptions {
    /// Folders searched first on its `PATH`, for shims (`containerd-shim-*`).
    pub extra_path: Vec<PathBuf>,
    /// Variables added to its environment, which containerd hands on to every shim it starts.
    pub env: Vec<(OsString, OsString)>,
    /// Proxy snapshotters in its configuration.
    pub proxies: Vec<ProxyPlugin>,
    /// Kubernetes' CRI plugin, enabled with this configuration (disabled when `None`).
    pub cri: Option<CriConfig>,
}

impl DaemonOptions {
    /// Only `extra_path` on the `PATH`.
    pub fn with_path(extra_path: &[&Path]) -> DaemonOptions {
        DaemonOptions {
            extra_path: extra_path.iter().map(|p| p.to_path_buf()).collect(),
            ..DaemonOptions::default()
        }
    }
}

/// A private containerd, stopped (with everything it started) when dropped.
#[derive(Debug)]
pub struct Containerd {
    daemon: Daemon,
    child: Child,
    /// Taken by [`Containerd::restart`], which hands it to the new daemon.
    dir: Option<tempfile::TempDir>,
    /// Variables set in the daemon's environment (kept across restarts).
    env: Vec<(OsString, OsString)>,
    /// Whether its CRI plugin runs (its pods' bridge is deleted with it).
    cri: bool,
    /// What a routed pod network changed on the host, put back when the daemon stops.
    host_network: Option<HostNetworkGuard>,
}

impl Containerd {
    /// Starts `daemon` with nothing extra on its `PATH`.
    pub fn start(daemon: Daemon) -> Result<Containerd, Error> {
        Containerd::start_with_path(daemon, &[])
    }

    /// Starts `daemon` with `extra_path` folders searched first for shims (`containerd-shim-*`).
    pub fn start_with_path(daemon: Daemon, extra_path: &[&Path]) -> Result<Containerd, Error> {
        Containerd::start_with(daemon, DaemonOptions::with_path(extra_path))
    }

    /// Starts `daemon` as [`Containerd::start_with_path`] does, with `env` added to its
    /// environment (which containerd hands on to every shim it starts): for example
    /// `NOTIFY_SOCKET`, as systemd sets it for Debian's `containerd.service`.
    pub fn start_with_env(
        daemon: Daemon,
        extra_path: &[&Path],
        env: Vec<(OsString, OsString)>,
    ) -> Result<Containerd, Error> {
        Containerd::start_with(
            daemon,
            DaemonOptions {
                env,
                ..DaemonOptions::with_path(extra_path)
            },
        )
    }

    /// Starts `daemon` with `extra_path` first on its `PATH` and `proxies` configured as
    /// proxy snapshotters.
    pub fn start_with_proxies(
        daemon: Daemon,
        extra_path: &[&Path],
        proxies: &[ProxyPlugin],
    ) -> Result<Containerd, Error> {
        Containerd::start_with(
            daemon,
            DaemonOptions {
                proxies: proxies.to_vec(),
                ..DaemonOptions::with_path(extra_path)
            },
        )
    }

    /// Starts `daemon` with everything `options` adds.
    pub fn start_with(daemon: Daemon, options: DaemonOptions) -> Result<Containerd, Error> {
        crate::require_root()?;
        let dir = tempfile::Builder::new()
            .prefix("ctrd-")
            .tempdir_in("/tmp")
            .map_err(|e| Error::io("/tmp", e))?;
        let config = dir.path().join("config.toml");
        std::fs::write(
            &config,
            daemon.config(dir.path(), &options.proxies, options.cri.as_ref()),
        )
        .map_err(|e| Error::io(&config, e))?;
        if let Some(cri) = &options.cri {
            cri.write_cni(dir.path())?;
        }
        let extra_path: Vec<&Path> = options.extra_path.iter().map(PathBuf::as_path).collect();
        let routed = options
            .cri
            .as_ref()
            .is_some_and(|c| c.pod_network == PodNetwork::Routed);
        let guard = routed.then(HostNetworkGuard::record);
        let mut containerd =
            Containerd::spawn(daemon, dir, &extra_path, options.env, options.cri.is_some());
        match &mut containerd {
            Ok(c) => c.host_network = guard,
            Err(_) => {
                if let Some(guard) = guard {
                    guard.restore();
                }
            }
        }
        containerd
    }

    /// Stops this daemon (leaving its shims and containers running, as a crash or upgrade
    /// would) and starts the same daemon again on the same folders and sockets.
    pub fn restart(mut self, extra_path: &[&Path]) -> Result<Containerd, Error> {
        self.stop_daemon();
        self.respawn(extra_path)
    }

    /// Kills this daemon with SIGKILL (a crash: nothing of its own shutdown runs; its shims
    /// and containers keep running) and starts the same daemon again on the same folders and
    /// sockets.
    pub fn crash_and_restart(mut self, extra_path: &[&Path]) -> Result<Containerd, Error> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.respawn(extra_path)
    }

    fn respawn(mut self, extra_path: &[&Path]) -> Result<Containerd, Error> {
        let dir = self.dir.take().ok_or_else(|| Error::DaemonStart {
            daemon: self.daemon.version().into(),
            reason: "already restarted".into(),
            log: String::new(),
        })?;
        let env = std::mem::take(&mut self.env);
        let guard = self.host_network.take();
        let mut containerd = Containerd::spawn(self.daemon, dir, extra_path, env, self.cri)?;
        containerd.host_network = guard;
        Ok(containerd)
    }

    fn spawn(
        daemon: Daemon,
        dir: tempfile::TempDir,
        extra_path: &[&Path],
        env: Vec<(OsString, OsString)>,
        cri: bool,
    ) -> Result<Containerd, Error> {
        let binary = daemon.program("containerd")?;
        let config = dir.path().join("config.toml");
        let log_path = dir.path().join("containerd.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| Error::io(&log_path, e))?;
        let log_err = log.try_clone().map_err(|e| Error::io(&log_path, e))?;

        let mut path: Vec<PathBuf> = extra_path.iter().map(|p| p.to_path_buf()).collect();
        path.push(daemon.bin_dir());
        let system_path = std::env::var_os("PATH").unwrap_or_default();
        path.extend(std::env::split_paths(&system_path));
        let path = std::env::join_paths(path).map_err(|e| Error::DaemonStart {
            daemon: daemon.version().into(),
            reason: format!("bad PATH: {e}"),
            log: String::new(),
        })?;

        let child = Command::new(&binary)
            .arg("--config")
            .arg(&config)
            .env("PATH", path)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(|e| Error::io(&binary, e))?;
        let mut containerd = Containerd {
            daemon,
            child,
            dir: Some(dir),
            env,
            cri,
            host_network: None,
        };
        containerd.wait_ready()?;
        Ok(containerd)
    }

    fn stop_daemon(&mut self) {
        let pid = Pid::from_raw(self.child.id() as i32);
        let _ = kill(pid, Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn wait_ready(&mut self) -> Result<(), Error> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(self.start_error(format!("it exited with {status}")));
            }
            if UnixStream::connect(self.grpc_address()).is_ok() && self.ttrpc_address().exists() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(self.start_error("its socket did not appear within 30 s".into()));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn start_error(&self, reason: String) -> Error {
        let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(30).collect();
        Error::DaemonStart {
            daemon: self.daemon.version().into(),
            reason,
            log: tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
        }
    }

    /// Which daemon this is.
    pub fn daemon(&self) -> Daemon {
        self.daemon
    }

    /// The gRPC socket.
    pub fn grpc_address(&self) -> PathBuf {
        self.dir().join("c.sock")
    }

    /// The ttrpc socket (where shims publish events).
    pub fn ttrpc_address(&self) -> PathBuf {
        self.dir().join("c.sock.ttrpc")
    }

    /// The daemon's temporary folder (config, root, state, sockets, log).
    pub fn dir(&self) -> &Path {
        self.dir
            .as_ref()
            .map_or(Path::new("/nonexistent"), |d| d.path())
    }

    /// Where this daemon's shims put their sockets: a private folder for containerd 2.4 (set
    /// as its shim manager's `socket_dir`), containerd's fixed `/run/containerd/s` for the
    /// others.
    pub fn socket_dir(&self) -> PathBuf {
        match self.daemon {
            Daemon::Upstream => self.dir().join(SOCKET_DIR_NAME),
            _ => PathBuf::from("/run/containerd/s"),
        }
    }

    /// The daemon's log file.
    pub fn log_path(&self) -> PathBuf {
        self.dir().join("containerd.log")
    }

    /// The daemon's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The daemon's namespaces, as `ctr` lists them.
    fn namespaces_in(&self, dir: &Path) -> Vec<String> {
        let Ok(program) = self.daemon.program("ctr") else {
            return Vec::new();
        };
        Command::new(program)
            .arg("--address")
            .arg(dir.join("c.sock"))
            .args(["namespaces", "ls", "-q"])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .filter(|l| !l.is_empty() && !l.contains('/') && *l != "..")
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Imports `image` into `namespace` with this daemon's `ctr` (unpacked into its default
    /// snapshotter), as `ctr -n NAMESPACE images import` does.
    pub fn import_image(&self, namespace: &str, image: &ImageArchive) -> Result<(), Error> {
        let out = self
            .ctr()?
            .args(["-n", namespace, "images", "import"])
            .arg(image.path())
            .stdin(Stdio::null())
            .output()
            .map_err(|e| Error::io("ctr images import", e))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(Error::io(
                image.path(),
                std::io::Error::other(format!(
                    "ctr images import into {namespace} failed ({}): {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                )),
            ))
        }
    }

    /// A `ctr` command of the same containerd version, pointed at this daemon.
    pub fn ctr(&self) -> Result<Command, Error> {
        let mut cmd = Command::new(self.daemon.program("ctr")?);
        cmd.arg("--address").arg(self.grpc_address());
        // containerd 2.2+ deprecates cgroup v1 (this host's), and its ctr then prints a warning
        // on stderr before every command's own output.
        cmd.env("CONTAINERD_SUPPRESS_DEPRECATION_WARNINGS", "1");
        Ok(cmd)
    }

    /// Makes the daemon collect garbage now, snapshotters' backends included: a lease
    /// created and deleted with `--sync` (containerd answers once it has collected). Its
    /// scheduler otherwise spaces collections out, or waits for 100 mutations, so a removal's
    /// leftovers can stay for a long time.
    pub fn collect_garbage(&self) -> Result<(), Error> {
        let run = |args: &[&str]| -> Result<String, Error> {
            let out = self
                .ctr()?
                .args(["--namespace", "ctrd-gc"])
                .args(args)
                .output()
                .map_err(|e| Error::io("ctr", e))?;
            if !out.status.success() {
                return Err(Error::Setup {
                    what: format!("ctr {}", args.join(" ")),
                    reason: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
                });
            }
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        };
        let created = run(&["leases", "create"])?;
        let id = created
            .split_whitespace()
            .next()
            .ok_or_else(|| Error::Setup {
                what: "ctr leases create".into(),
                reason: "printed no lease id".into(),
            })?;
        run(&["leases", "delete", "--sync", id])?;
        Ok(())
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let Some(dir) = self.dir.take() else {
            // Restarted: the new daemon owns the folder and cleans up.
            return;
        };
        let namespaces = self.namespaces_in(dir.path());
        self.stop_daemon();
        // Shims outlive containerd by design; they carry our socket path in their arguments.
        let leftovers = cleanup::processes_mentioning(&dir.path().to_string_lossy());
        cleanup::kill_all(&leftovers);
        cleanup::unmount_under(dir.path());
        for namespace in &namespaces {
            cleanup::remove_namespace_leftovers(namespace, dir.path());
        }
        if self.cri {
            CriConfig::remove_bridge(dir.path());
        }
        if let Some(guard) = self.host_network.take() {
            guard.restore();
        }
    }
}
