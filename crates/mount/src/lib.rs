//! Performs the mounts containerd's snapshotters return, as a shim (or containerd's own
//! mount code) does: one implementation for our runc shim, our snapshotters and their tests.
//!
//! - Options become mount(2) flags (`ro`, `rbind`, `nosuid`, `noexec`, ... with their `rw`,
//!   `suid` opposites) or filesystem data; a read-only bind is remounted read-only.
//! - `loop` binds the source file to a free loop device (autoclear, `direct-io` honoured).
//! - Overlay options longer than the page mount(2) copies (a lowerdir chain of about 60 or
//!   more layers) are made relative to the layers' shared folder and mounted from a thread
//!   that works in it.
//! - `uidmap=` / `gidmap=` (containerd's `CONTAINER:HOST:SIZE,...` maps) make idmapped
//!   mounts: an overlay's lower layers, or a bind, are attached idmapped through a user
//!   namespace holding the maps (`mount_setattr(2)`, Linux 5.12; overlayfs takes idmapped
//!   lower layers from 5.19). [`idmap::supported`] tells whether the kernel can.
//! - Options only containerd's mount manager understands (`X-containerd.*`) are refused
//!   with the reason instead of reaching the kernel.
//!
//! ```no_run
//! use ctrd_mount::{Mount, mount_all, unmount_all};
//!
//! let mounts = [Mount {
//!     kind: "overlay".into(),
//!     source: "overlay".into(),
//!     target: String::new(),
//!     options: vec![
//!         "workdir=/var/lib/s/3/work".into(),
//!         "upperdir=/var/lib/s/3/fs".into(),
//!         "lowerdir=/var/lib/s/2/fs:/var/lib/s/1/fs".into(),
//!     ],
//! }];
//! mount_all(&mounts, "/run/my-rootfs".as_ref())?;
//! // ... use /run/my-rootfs ...
//! unmount_all("/run/my-rootfs".as_ref());
//! # Ok::<(), ctrd_mount::Error>(())
//! ```

mod error;
pub mod idmap;
mod long_overlay;
mod loop_device;
mod mounts;
mod options;

pub use error::{Error, Result};
pub use mounts::{Mount, mount_all, unmount_all};
