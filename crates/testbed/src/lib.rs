//! The real test bed: what every integration test, example and benchmark of this repository
//! runs against, built once here.
//!
//! - [`Containerd`] starts a private containerd (Debian's 1.6.20, or 2.1.9 / 1.7.24 unpacked by
//!   `scripts/setup-testbed.sh`) with its own root, state and sockets under a temporary folder
//!   and CRI disabled; dropping it stops the daemon and every shim it started, unmounts what
//!   they left and removes the folder.
//! - [`SnapshotterProcess`] runs an external snapshotter (a proxy plugin) from a private
//!   folder; [`Containerd::start_with_proxies`] starts a daemon that uses it.
//! - [`workspace_bin`] builds and finds another workspace package's binary (our shim, for
//!   the log driver's tests).
//! - [`Rsyslog`] runs a private rsyslogd on loopback (the syslog sink's tests).
//! - [`Rootfs`] makes a busybox root filesystem; [`Bundle`] an OCI bundle around one;
//!   [`ImageArchive`] an OCI image archive of it, built offline, for `ctr image import`.
//! - [`Registry`] runs a registry on 127.0.0.1 (plain HTTP or HTTPS with a CA it makes; open,
//!   basic auth or bearer tokens from a [`TokenServer`]) and pushes test images into it;
//!   [`CutProxy`] drops a download mid-way; [`StatusServer`] answers every request with one
//!   status.
//! - [`OurShim`] builds our runc shim and puts it where a [`Containerd`] finds it.
//! - [`SmallFs`] is a small tmpfs that a ballast file fills (the disk-full tests).
//! - [`leftovers::left_behind`] lists what a namespace's containers and shims left behind
//!   (processes, mounts, runc state, sockets, cgroups): the last check of a fault test.
//! - [`critest`] runs Kubernetes' CRI conformance suite against a CRI daemon, its images
//!   served by a private registry.
//! - [`cri`] turns on Kubernetes' CRI plugin in a daemon (runtime handlers, a pause image,
//!   a private CNI bridge); [`CriClient`] drives it as kubelet does.
//!
//! Nothing here is mocked, so it needs root and the packages the set-up script installs; when
//! they are missing, the error says which command to run instead of letting a test pass.
//!
//! ```no_run
//! use ctrd_testbed::{Containerd, Daemon};
//!
//! let containerd = Containerd::start(Daemon::Bookworm)?;
//! println!("gRPC at {}", containerd.grpc_address().display());
//! # Ok::<(), ctrd_testbed::Error>(())
//! ```

pub mod access;
mod bundle;
mod cargo;
pub mod cgroup;
pub mod cleanup;
pub mod cri;
mod cri_client;
mod cri_daemon;
pub mod critest;
mod cut_proxy;
mod daemon;
mod error;
mod image;
pub mod leftovers;
mod registry;
mod rootfs;
mod rsyslog;
mod served_shim;
mod shim;
mod small_fs;
mod snapshotter;
mod static_c;
mod status_server;
mod tls;
mod token;

pub use bundle::Bundle;
pub use cargo::workspace_bin;
pub use cri_client::{CriClient, Pod};
pub use cri_daemon::{BUSYBOX_IMAGE, CriDaemon, CriDaemonOptions, CriShim, IO_GID, IO_UID};
pub use cut_proxy::CutProxy;
pub use daemon::{Containerd, Daemon, DaemonOptions, PARALLEL_UNPACKS, ProxyPlugin};
pub use error::Error;
pub use image::{ImageArchive, ImageConfig, ImageFile, LayerChange};
pub use registry::{Registry, RegistryAuth, RegistryOptions};
pub use rootfs::Rootfs;
pub use rsyslog::Rsyslog;
pub use served_shim::ServedShim;
pub use shim::OurShim;
pub use small_fs::SmallFs;
pub use snapshotter::SnapshotterProcess;
pub use status_server::StatusServer;
pub use tls::{SigningKey, TlsFiles, make_server_certs as make_tls_files};
pub use token::TokenServer;

use std::path::{Path, PathBuf};

/// The command that installs everything the test bed needs.
pub const SETUP_COMMAND: &str = "scripts/setup-testbed.sh";

/// Where runc shims (ours and Debian's Go shim alike) keep runc's state for `namespace`.
pub fn runc_root(namespace: &str) -> std::path::PathBuf {
    std::path::Path::new("/run/containerd/runc").join(namespace)
}

/// The repository's root folder.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .map_or_else(|| PathBuf::from("."), Path::to_owned)
}

/// Fails unless the process runs as root, which containers need.
pub fn require_root() -> Result<(), Error> {
    if nix::unistd::geteuid().is_root() {
        Ok(())
    } else {
        Err(Error::NotRoot)
    }
}
