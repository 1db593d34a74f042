//! A containerd with its CRI plugin on, the shim under test as a runtime handler, and the pause
//! and busybox images in CRI's namespace: what kubelet finds on a node.

use std::path::{Path, PathBuf};

use crate::cri::{CRI_NAMESPACE, CriConfig, PAUSE_IMAGE, PodNetwork, RuntimeHandler};
use crate::{
    Containerd, CriClient, Daemon, DaemonOptions, Error, ImageArchive, OurShim, ProxyPlugin,
};

/// The busybox image pods' containers run, in CRI's namespace of every [`CriDaemon`].
pub const BUSYBOX_IMAGE: &str = "docker.io/library/busybox:ctrd";

/// The user the runtime handlers of a [`CriDaemon`] give containers' stdio to (`IoUid`).
pub const IO_UID: u32 = 1000;
/// The group the runtime handlers of a [`CriDaemon`] give containers' stdio to (`IoGid`).
pub const IO_GID: u32 = 1000;

/// Which shim serves the pods of a [`CriDaemon`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CriShim {
    /// The daemon's own Go shim, as handler `runc` (the reference).
    Go,
    /// Ours as its own runtime type `io.containerd.ctrd.v2`, handler `ctrd`, beside the Go
    /// shim.
    OursAsHandler,
    /// Ours as the drop-in `containerd-shim-runc-v2` first on the daemon's `PATH`, handler
    /// `runc`, with runtime options in the handler's configuration (runc's state under the
    /// daemon's folder, see [`CriDaemon::runc_root`]).
    OursAsRunc,
}

impl CriShim {
    /// Every way of running a shim under CRI.
    pub const ALL: [CriShim; 3] = [CriShim::OursAsHandler, CriShim::OursAsRunc, CriShim::Go];

    /// The runtime handler pods name to get this shim.
    pub fn handler(self) -> &'static str {
        match self {
            CriShim::OursAsHandler => "ctrd",
            CriShim::Go | CriShim::OursAsRunc => "runc",
        }
    }

    /// Whether this is our shim.
    pub fn is_ours(self) -> bool {
        self != CriShim::Go
    }

    /// A short name for test names: `ours_as_handler`, `ours_as_runc`, `go_shim`.
    pub fn name(self) -> &'static str {
        match self {
            CriShim::Go => "go_shim",
            CriShim::OursAsHandler => "ours_as_handler",
            CriShim::OursAsRunc => "ours_as_runc",
        }
    }
}

/// What a test adds to a [`CriDaemon`].
#[derive(Debug, Clone, Default)]
pub struct CriDaemonOptions {
    /// CRI's registry hosts, from a `certs.d`-style folder (one `HOST/hosts.toml` per
    /// registry, such as a mirror on 127.0.0.1 for `registry.k8s.io`).
    pub registry_config_path: Option<PathBuf>,
    /// Whether the host reaches the pods (by address and host port).
    pub pod_network: PodNetwork,
    /// Our shim from this binary (such as a release build) instead of the running test's
    /// build.
    pub shim_binary: Option<PathBuf>,
    /// Proxy snapshotters in the daemon's configuration (already serving: a
    /// [`SnapshotterProcess`](crate::SnapshotterProcess) the test keeps until the daemon is
    /// dropped).
    pub proxies: Vec<ProxyPlugin>,
    /// Runtime handlers added after `runc` and `ctrd`, such as one whose containers' root
    /// filesystems come from a proxy snapshotter ([`RuntimeHandler::snapshotter`]).
    pub handlers: Vec<RuntimeHandler>,
}

/// A CRI-enabled private containerd with its images imported and a client connected.
#[derive(Debug)]
pub struct CriDaemon {
    /// The client; dropped (removing its pods) before the daemon.
    client: Option<CriClient>,
    containerd: Option<Containerd>,
    shim: CriShim,
    _ours: Option<OurShim>,
    runc_root: Option<tempfile::TempDir>,
}

impl CriDaemon {
    /// Starts `daemon` with CRI on, `shim` serving pods, and the pause and busybox images in
    /// namespace `k8s.io`.
    pub fn start(daemon: Daemon, shim: CriShim) -> Result<CriDaemon, Error> {
        CriDaemon::start_with(daemon, shim, CriDaemonOptions::default())
    }

    /// Starts `daemon` as [`CriDaemon::start`] does, with what `options` adds.
    pub fn start_with(
        daemon: Daemon,
        shim: CriShim,
        options: CriDaemonOptions,
    ) -> Result<CriDaemon, Error> {
        let binary = options.shim_binary.as_deref();
        let name = match shim {
            CriShim::Go => None,
            CriShim::OursAsHandler => Some("containerd-shim-ctrd-v2"),
            CriShim::OursAsRunc => Some("containerd-shim-runc-v2"),
        };
        let ours = match (name, binary) {
            (None, _) => None,
            (Some(name), Some(binary)) => Some(OurShim::link(binary, name)?),
            (Some(name), None) => Some(OurShim::build_as(name)?),
        };
        let runc_root = match shim {
            CriShim::OursAsRunc => Some(
                tempfile::Builder::new()
                    .prefix("ctrd-cri-runc-")
                    .tempdir_in("/run")
                    .map_err(|e| Error::io("/run", e))?,
            ),
            _ => None,
        };
        // Both handlers give stdio to IO_UID:IO_GID, as for user-namespace pods: pipes a
        // container running as that user can reopen by path (/dev/stdout).
        let io = |h: RuntimeHandler| {
            h.option("IoUid", &IO_UID.to_string())
                .option("IoGid", &IO_GID.to_string())
        };
        let mut runc = io(RuntimeHandler::runc());
        if let Some(root) = &runc_root {
            let root = root.path().display().to_string();
            runc = runc.option("Root", &format!("{root:?}"));
        }
        let mut handlers = vec![runc, io(RuntimeHandler::ctrd())];
        handlers.extend(options.handlers);
        let cri = CriConfig {
            handlers,
            registry_config_path: options.registry_config_path,
            pod_network: options.pod_network,
            ..CriConfig::default()
        };
        let containerd = Containerd::start_with(
            daemon,
            DaemonOptions {
                extra_path: ours.iter().map(|o| o.path().to_path_buf()).collect(),
                cri: Some(cri),
                proxies: options.proxies,
                ..DaemonOptions::default()
            },
        )?;
        for image in [
            ImageArchive::pause(PAUSE_IMAGE)?,
            ImageArchive::busybox(BUSYBOX_IMAGE)?,
        ] {
            containerd.import_image(CRI_NAMESPACE, &image)?;
        }
        let client = CriClient::connect(&containerd)?;
        Ok(CriDaemon {
            client: Some(client),
            containerd: Some(containerd),
            shim,
            _ours: ours,
            runc_root,
        })
    }

    /// The CRI client.
    pub fn cri(&self) -> &CriClient {
        self.client
            .as_ref()
            .expect("the client lives as long as the daemon")
    }

    /// The daemon.
    pub fn containerd(&self) -> &Containerd {
        self.containerd
            .as_ref()
            .expect("the daemon lives until drop")
    }

    /// The live shim processes this daemon started (any runtime type).
    pub fn shim_pids(&self) -> Vec<i32> {
        let address = self.containerd().grpc_address().display().to_string();
        crate::cleanup::live_processes()
            .into_iter()
            .filter(|(_, cmd)| cmd.contains("containerd-shim-") && cmd.contains(&address))
            .map(|(pid, _)| pid)
            .collect()
    }

    /// Which shim serves the pods.
    pub fn shim(&self) -> CriShim {
        self.shim
    }

    /// Where runc keeps the state of CRI's containers: the handler's `Root` option for
    /// [`CriShim::OursAsRunc`], runc's default otherwise.
    pub fn runc_root(&self) -> PathBuf {
        match &self.runc_root {
            Some(root) => root.path().join(CRI_NAMESPACE),
            None => crate::runc_root(CRI_NAMESPACE),
        }
    }

    /// Stops containerd (leaving pods running, as a crash or an upgrade does) and starts it
    /// again on the same folders and socket; the client's channel dials it again on its next
    /// call (a call in between fails with a transport error).
    pub fn restart(&mut self) -> Result<(), Error> {
        let paths: Vec<PathBuf> = self._ours.iter().map(|o| o.path().to_path_buf()).collect();
        let refs: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
        let old = self.containerd.take().ok_or_else(|| Error::Cri {
            call: "restart".into(),
            error: "no daemon".into(),
        })?;
        self.containerd = Some(old.restart(&refs)?);
        Ok(())
    }
}

impl Drop for CriDaemon {
    fn drop(&mut self) {
        // Pods first, through CRI, then the daemon and what it leaves.
        drop(self.client.take());
        drop(self.containerd.take());
        if let Some(root) = &self.runc_root {
            crate::cleanup::remove_runc_leftovers(&root.path().join(CRI_NAMESPACE), None);
        }
    }
}
