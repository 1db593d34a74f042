//! Performing the [`Mount`](crate::Mount)s a snapshotter returns, as containerd and shims
//! do, including overlay mounts whose options are longer than the page mount(2) accepts:
//! the `ctrd-mount` crate's implementation, which our runc shim uses too.

pub use ctrd_mount::{Error, mount_all, unmount_all};
