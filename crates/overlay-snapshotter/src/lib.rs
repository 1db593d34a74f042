//! A containerd snapshotter on kernel overlayfs, with containerd's overlay semantics, built on
//! [`ctrd_snapshots`]: its metadata store holds what is known of each snapshot, and this
//! crate only makes, renames and removes directories named by snapshot id.
//!
//! Layout under the root folder: `metadata.redb`; `snapshots/ID/fs` (the layer's files, the
//! upper directory while active) and `snapshots/ID/work` (overlayfs' work folder);
//! `snapshots/new-*` (being made) and `snapshots/rm-*` (being removed), which `Cleanup`
//! reclaims with every `ID` folder the store does not know.
//!
//! ```no_run
//! use ctrd_overlay_snapshotter::{Options, OverlaySnapshotter};
//! use ctrd_snapshots::Snapshotter;
//!
//! let snapshotter = OverlaySnapshotter::open("/var/lib/ctrd-overlay".as_ref(), Options::detect())?;
//! let mounts = snapshotter.prepare("my-rootfs", None, Default::default())?;
//! println!("{mounts:?}");
//! # Ok::<(), ctrd_snapshots::Error>(())
//! ```

mod error;
mod options;
mod overlay;
mod remap;
mod spare;
mod usage;

pub use error::Error;
pub use options::Options;
pub use overlay::{
    GID_MAPPING_LABEL, OverlaySnapshotter, PARENT_CHAIN_ID_LABEL, UID_MAPPING_LABEL,
    UNPACKED_BEFORE_PARENT,
};
pub use usage::disk_usage;
