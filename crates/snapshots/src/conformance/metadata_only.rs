//! A snapshotter that keeps metadata and nothing else: the reference for the cases that
//! mount nothing, and the smallest thing containerd can load as a proxy snapshotter.

use std::path::Path;

use crate::{Filter, Info, Kind, Labels, MetaStore, Mount, Result, Snapshotter, Usage};

/// A [`Snapshotter`] that is only a [`MetaStore`]: prepare, view, commit, labels, listing and
/// removal work, but no snapshot has files, so its mounts are empty and its usage is zero.
///
/// It passes every [`Case`](super::Case) that mounts nothing. Served with its store on a
/// memory filesystem, it is also a proxy snapshotter whose own work per call is a few tens
/// of microseconds: what containerd's proxy path costs by itself (the benchmarks' floor;
/// the crate's `metadata_only` example serves it).
#[derive(Debug)]
pub struct MetadataOnly {
    store: MetaStore,
}

impl MetadataOnly {
    /// Opens (or makes) the store at `path`.
    pub fn open(path: &Path) -> Result<MetadataOnly> {
        Ok(MetadataOnly {
            store: MetaStore::open(path)?,
        })
    }
}

impl Snapshotter for MetadataOnly {
    fn stat(&self, key: &str) -> Result<Info> {
        self.store.stat(key)
    }

    fn update(&self, info: Info, fieldpaths: &[String]) -> Result<Info> {
        self.store.update(info, fieldpaths)
    }

    fn usage(&self, key: &str) -> Result<Usage> {
        Ok(self.store.usage(key)?.1.unwrap_or_default())
    }

    fn mounts(&self, key: &str) -> Result<Vec<Mount>> {
        self.store.get(key).map(|_| Vec::new())
    }

    fn prepare(&self, key: &str, parent: Option<&str>, labels: Labels) -> Result<Vec<Mount>> {
        self.store
            .create(Kind::Active, key, parent, labels, |_| Ok(()))
            .map(|_| Vec::new())
    }

    fn view(&self, key: &str, parent: Option<&str>, labels: Labels) -> Result<Vec<Mount>> {
        self.store
            .create(Kind::View, key, parent, labels, |_| Ok(()))
            .map(|_| Vec::new())
    }

    fn commit(&self, name: &str, key: &str, rebase: Option<&str>, labels: Labels) -> Result<()> {
        let id = self.store.get(key)?.id;
        self.store
            .commit(key, name, id, rebase, labels, Usage::default())
    }

    fn remove(&self, key: &str) -> Result<()> {
        self.store.remove(key).map(drop)
    }

    fn walk(&self, filter: &Filter, f: &mut dyn FnMut(Info) -> Result<()>) -> Result<()> {
        self.store.walk(filter, f)
    }

    fn cleanup(&self) -> Result<()> {
        Ok(())
    }
}
