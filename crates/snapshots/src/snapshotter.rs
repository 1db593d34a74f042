//! The `Snapshotter` trait: what a snapshotter implements, in plain Rust types.

use crate::{Filter, Info, Labels, Mount, Result, Usage};

/// A snapshotter, as containerd sees one. Calls are synchronous: the server runs each on
/// tokio's blocking pool, so an implementation may do file I/O directly and be called from
/// several threads at once.
///
/// Keys name active snapshots and views, names name committed snapshots; they share one
/// namespace. Parents are always committed snapshots.
pub trait Snapshotter: Send + Sync + 'static {
    /// What is known of `key`.
    fn stat(&self, key: &str) -> Result<Info>;

    /// Changes the labels of `info.name` (see [`MetaStore::update`](crate::MetaStore::update)
    /// for the field paths) and returns the result.
    fn update(&self, info: Info, fieldpaths: &[String]) -> Result<Info>;

    /// The disk `key` uses by itself.
    fn usage(&self, key: &str) -> Result<Usage>;

    /// The mounts of the active snapshot or view `key`.
    fn mounts(&self, key: &str) -> Result<Vec<Mount>>;

    /// Makes a writable snapshot `key` on `parent` and returns its mounts.
    fn prepare(&self, key: &str, parent: Option<&str>, labels: Labels) -> Result<Vec<Mount>>;

    /// Makes a read-only view `key` of `parent` and returns its mounts.
    fn view(&self, key: &str, parent: Option<&str>, labels: Labels) -> Result<Vec<Mount>>;

    /// Commits the active snapshot `key` as the immutable snapshot `name`; `key` is gone
    /// afterwards. With `rebase`, the committed snapshot's parent is `rebase` instead of the
    /// parent `key` was prepared on.
    fn commit(&self, name: &str, key: &str, rebase: Option<&str>, labels: Labels) -> Result<()>;

    /// Removes `key`, which must have no children.
    fn remove(&self, key: &str) -> Result<()>;

    /// Calls `f` with every snapshot `filter` matches.
    fn walk(&self, filter: &Filter, f: &mut dyn FnMut(Info) -> Result<()>) -> Result<()>;

    /// Reclaims what removals and crashes left behind.
    fn cleanup(&self) -> Result<()>;
}
