//! The conformance suite: the cases every containerd snapshotter must pass, for any
//! [`Snapshotter`](crate::Snapshotter) served over gRPC, and for any snapshotter containerd
//! loads (a proxy plugin or a built-in one). Feature `conformance`.
//!
//! A [`Target`] says where the calls go: [`Target::direct`] talks to a snapshotter's own
//! socket (such as one [`serve_until`](crate::serve_until) serves in a test), and
//! [`Target::through_containerd`] talks to containerd's `Snapshots` service naming the
//! snapshotter, so containerd's metadata layer sits in front (every call in one lease;
//! removals reach the snapshotter at garbage collection). [`run`] runs one [`Case`] and
//! returns the first failed check; [`CASES`] lists them all.
//!
//! Each case uses its own key prefix and removes what it made, so the cases can run one
//! after another against one target. Cases with [`Case::mounts`] set mount the returned
//! mounts with [`mount::mount_all`](crate::mount::mount_all) to write and read files: they need
//! root, and whatever filesystem the mounts name (overlayfs for an overlay snapshotter).
//! The others only call the API.
//!
//! The example runs the cases that mount nothing against [`MetadataOnly`], a snapshotter
//! that keeps only metadata (its mounts are empty), served in-process; a snapshotter of your
//! own goes where it is:
//!
//! ```
//! use std::sync::Arc;
//!
//! use ctrd_snapshots::Listener;
//! use ctrd_snapshots::conformance::{self, CASES, MetadataOnly, Target};
//!
//! #[tokio::main]
//! async fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
//!     let dir = tempfile::tempdir()?;
//!     let snapshotter = MetadataOnly::open(&dir.path().join("metadata.redb"))?;
//!     let socket = dir.path().join("snapshotter.sock");
//!     let listener = Listener::bind(&socket)?;
//!     let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//!     let server = tokio::spawn(ctrd_snapshots::serve_until(
//!         listener,
//!         Arc::new(snapshotter),
//!         async move { let _ = stopped.await; },
//!     ));
//!
//!     let target = Target::direct(&socket).await?;
//!     for case in CASES.iter().filter(|case| !case.mounts) {
//!         conformance::run(&target, case).await?;
//!         println!("{}: passed", case.name);
//!     }
//!
//!     let _ = stop.send(());
//!     server.await??;
//!     Ok(())
//! }
//! ```

pub mod calls;
mod cases;
mod metadata_only;
mod mounted;
mod target;

pub use cases::{CASES, Case, run};
pub use metadata_only::MetadataOnly;
pub use mounted::Mounted;
pub use target::Target;
