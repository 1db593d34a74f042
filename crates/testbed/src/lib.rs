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
//! - [`Registry`] runs a plain-HTTP registry on 127.0.0.1 and pushes test images into it.
//! - [`OurShim`] builds our runc shim and puts it where a [`Containerd`] finds it.
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
mod daemon;
mod error;
mod image;
mod registry;
mod rootfs;
mod rsyslog;
mod served_shim;
mod shim;
mod snapshotter;

pub use bundle::Bundle;
pub use cargo::workspace_bin;
pub use daemon::{Containerd, Daemon, DaemonOptions, ProxyPlugin};
pub use error::Error;
pub use image::ImageArchive;
pub use registry::Registry;
pub use rootfs::Rootfs;
pub use rsyslog::Rsyslog;
pub use served_shim::ServedShim;
pub use shim::OurShim;
pub use snapshotter::SnapshotterProcess;

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
