//! The plain Rust types a [`Snapshotter`](crate::Snapshotter) speaks: no protobuf in sight.

use std::collections::HashMap;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

/// A snapshot's labels: free-form key/value pairs kept with it.
pub type Labels = HashMap<String, String>;

/// What a snapshot is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Kind {
    /// A read-only view of a committed snapshot (`View`).
    View,
    /// A writable snapshot made by `Prepare`, committed or removed later.
    Active,
    /// An immutable snapshot made by `Commit`; it can be a parent.
    Committed,
}

impl Kind {
    /// The name containerd uses in filters and listings (`view`, `active`, `committed`).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::View => "view",
            Kind::Active => "active",
            Kind::Committed => "committed",
        }
    }
}

/// What is known of one snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    /// Its key (for active snapshots and views) or name (for committed ones).
    pub name: String,
    /// The committed snapshot it stacks on, if any.
    pub parent: Option<String>,
    /// Its kind.
    pub kind: Kind,
    /// Its labels.
    pub labels: Labels,
    /// When it was made.
    pub created_at: SystemTime,
    /// When it or its labels last changed.
    pub updated_at: SystemTime,
}

/// The disk a snapshot uses by itself (not counting its parents).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Bytes.
    pub size: i64,
    /// Inodes.
    pub inodes: i64,
}

/// One mount to perform, in the form containerd passes to shims and mount(8)
/// (`ctrd_mount::Mount`, which [`mount::mount_all`](crate::mount::mount_all) performs).
pub use ctrd_mount::Mount;
