//! The overlay snapshotter: directories by snapshot id, overlayfs mounts over them.

use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

use ctrd_snapshots::{
    Error, Filter, Info, Kind, Labels, MetaStore, Mount, Result, Snapshot, Snapshotter, Usage,
};

use crate::{Options, disk_usage};

/// Labels asking for user-namespace id mapping, which this snapshotter does not do yet.
const ID_MAPPING_LABELS: [&str; 2] = [
    "containerd.io/snapshot/uidmapping",
    "containerd.io/snapshot/gidmapping",
];

/// containerd's overlay snapshotter, in Rust.
#[derive(Debug)]
pub struct OverlaySnapshotter {
    root: PathBuf,
    store: MetaStore,
    options: Options,
    /// Folder work holds it shared; `Cleanup` holds it alone, so it never takes a folder
    /// that a call is still making or removing for an orphan.
    folders: RwLock<()>,
    staging: AtomicU64,
}

impl OverlaySnapshotter {
    /// Opens the snapshotter rooted at `root`, making the folder if needed.
    pub fn open(root: &Path, options: Options) -> Result<OverlaySnapshotter> {
        let snapshots = root.join("snapshots");
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&snapshots)
            .map_err(|e| Error::io("creating", &snapshots, e))?;
        let store = MetaStore::open(&root.join("metadata.redb"))?;
        Ok(OverlaySnapshotter {
            root: root.to_owned(),
            store,
            options,
            folders: RwLock::new(()),
            staging: AtomicU64::new(0),
        })
    }

    /// The root folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The options in force.
    pub fn options(&self) -> Options {
        self.options
    }

    fn snapshots_dir(&self) -> PathBuf {
        self.root.join("snapshots")
    }

    fn dir(&self, id: u64) -> PathBuf {
        self.snapshots_dir().join(id.to_string())
    }

    fn fs(&self, id: u64) -> String {
        self.dir(id).join("fs").to_string_lossy().into_owned()
    }

    fn shared(&self) -> std::sync::RwLockReadGuard<'_, ()> {
        self.folders
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn create(
        &self,
        kind: Kind,
        key: &str,
        parent: Option<&str>,
        labels: Labels,
    ) -> Result<Vec<Mount>> {
        if let Some(label) = ID_MAPPING_LABELS.iter().find(|l| labels.contains_key(**l)) {
            return Err(Error::Unsupported {
                what: format!("the {label} label (user-namespace id mapping)"),
            });
        }
        let _shared = self.shared();
        let n = self.staging.fetch_add(1, Ordering::Relaxed);
        let staging = self
            .snapshots_dir()
            .join(format!("new-{}-{n}", std::process::id()));
        let made = make_layout(&staging, kind);
        let result = made.and_then(|()| {
            self.store.create(kind, key, parent, labels, |snapshot| {
                if let Some(parent) = snapshot.parent_ids.first() {
                    // A new layer's root belongs to whoever owns its parent's root.
                    let parent_fs = self.dir(*parent).join("fs");
                    let meta = std::fs::metadata(&parent_fs)
                        .map_err(|e| Error::io("reading", &parent_fs, e))?;
                    let fs = staging.join("fs");
                    nix::unistd::chown(
                        &fs,
                        Some(nix::unistd::Uid::from_raw(meta.uid())),
                        Some(nix::unistd::Gid::from_raw(meta.gid())),
                    )
                    .map_err(|e| Error::io("changing the owner of", &fs, e.into()))?;
                }
                let dir = self.dir(snapshot.id);
                if dir.exists() {
                    // A crash after this rename and before the commit left a folder under
                    // an id the store never recorded, and so hands out again: set it aside
                    // for `Cleanup`.
                    let aside = self.snapshots_dir().join(format!(
                        "rm-{}-{}-{n}",
                        snapshot.id,
                        std::process::id()
                    ));
                    std::fs::rename(&dir, &aside)
                        .map_err(|e| Error::io("setting aside", &dir, e))?;
                }
                std::fs::rename(&staging, &dir).map_err(|e| Error::io("placing", &dir, e))
            })
        });
        match result {
            Ok((snapshot, ())) => Ok(self.mounts_of(&snapshot)),
            Err(e) => {
                let _ = std::fs::remove_dir_all(&staging);
                Err(e)
            }
        }
    }

    /// The mounts containerd's overlay snapshotter returns for `snapshot`.
    fn mounts_of(&self, snapshot: &Snapshot) -> Vec<Mount> {
        let bind = |source: String, ro: bool| {
            vec![Mount {
                kind: "bind".into(),
                source,
                target: String::new(),
                options: vec![if ro { "ro" } else { "rw" }.into(), "rbind".into()],
            }]
        };
        let parents = &snapshot.parent_ids;
        match (snapshot.kind, parents.as_slice()) {
            (Kind::Active, []) => bind(self.fs(snapshot.id), false),
            (Kind::View | Kind::Committed, []) => bind(self.fs(snapshot.id), true),
            (Kind::View | Kind::Committed, [only]) => bind(self.fs(*only), true),
            _ => {
                let mut options = Vec::new();
                if self.options.index_off {
                    options.push("index=off".to_owned());
                }
                if self.options.userxattr {
                    options.push("userxattr".to_owned());
                }
                if snapshot.kind == Kind::Active {
                    let dir = self.dir(snapshot.id);
                    options.push(format!("workdir={}", dir.join("work").display()));
                    options.push(format!("upperdir={}", dir.join("fs").display()));
                }
                let lower: Vec<String> = parents.iter().map(|id| self.fs(*id)).collect();
                options.push(format!("lowerdir={}", lower.join(":")));
                vec![Mount {
                    kind: "overlay".into(),
                    source: "overlay".into(),
                    target: String::new(),
                    options,
                }]
            }
        }
    }

    fn remove_folder(&self, id: u64) -> Result<()> {
        let dir = self.dir(id);
        let doomed = self.snapshots_dir().join(format!("rm-{id}"));
        match std::fs::rename(&dir, &doomed) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::io("renaming", &dir, e)),
        }
        if self.options.async_remove {
            return Ok(());
        }
        std::fs::remove_dir_all(&doomed).map_err(|e| Error::io("removing", &doomed, e))
    }
}

/// Makes a snapshot's folder: `fs` (0755) and, for active snapshots, `work` (0711).
fn make_layout(dir: &Path, kind: Kind) -> Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.mode(0o700);
    builder
        .create(dir)
        .map_err(|e| Error::io("creating", dir, e))?;
    let fs = dir.join("fs");
    builder.mode(0o755);
    builder
        .create(&fs)
        .map_err(|e| Error::io("creating", &fs, e))?;
    // The umask may have narrowed the mode; a layer's root must be exactly 0755.
    std::fs::set_permissions(&fs, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .map_err(|e| Error::io("setting the mode of", &fs, e))?;
    if kind == Kind::Active {
        let work = dir.join("work");
        builder.mode(0o711);
        builder
            .create(&work)
            .map_err(|e| Error::io("creating", &work, e))?;
    }
    Ok(())
}

impl Snapshotter for OverlaySnapshotter {
    fn stat(&self, key: &str) -> Result<Info> {
        self.store.stat(key)
    }

    fn update(&self, info: Info, fieldpaths: &[String]) -> Result<Info> {
        self.store.update(info, fieldpaths)
    }

    fn usage(&self, key: &str) -> Result<Usage> {
        let (snapshot, stored) = self.store.usage(key)?;
        match (snapshot.kind, stored) {
            (Kind::Committed, Some(usage)) => Ok(usage),
            // Measured outside any transaction; the snapshot may change meanwhile, as
            // containerd's own snapshotters allow.
            _ => disk_usage(&self.dir(snapshot.id).join("fs")),
        }
    }

    fn mounts(&self, key: &str) -> Result<Vec<Mount>> {
        let snapshot = self.store.get(key)?;
        if snapshot.kind == Kind::Committed {
            return Err(Error::WrongKind {
                key: key.into(),
                kind: snapshot.kind.as_str(),
                call: "mounts",
                wanted: "an active snapshot or a view",
            });
        }
        Ok(self.mounts_of(&snapshot))
    }

    fn prepare(&self, key: &str, parent: Option<&str>, labels: Labels) -> Result<Vec<Mount>> {
        self.create(Kind::Active, key, parent, labels)
    }

    fn view(&self, key: &str, parent: Option<&str>, labels: Labels) -> Result<Vec<Mount>> {
        self.create(Kind::View, key, parent, labels)
    }

    fn commit(&self, name: &str, key: &str, rebase: Option<&str>, labels: Labels) -> Result<()> {
        let snapshot = self.store.get(key)?;
        if snapshot.kind != Kind::Active {
            return Err(Error::WrongKind {
                key: key.into(),
                kind: snapshot.kind.as_str(),
                call: "commit",
                wanted: "an active snapshot",
            });
        }
        let usage = disk_usage(&self.dir(snapshot.id).join("fs"))?;
        self.store
            .commit(key, name, snapshot.id, rebase, labels, usage)
    }

    fn remove(&self, key: &str) -> Result<()> {
        let _shared = self.shared();
        let (id, _) = self.store.remove(key)?;
        if let Err(e) = self.remove_folder(id) {
            // The store no longer knows the folder, so `Cleanup` reclaims it.
            tracing::warn!(key, error = %e.full_message(), "removal left a folder for Cleanup");
        }
        Ok(())
    }

    fn walk(&self, filter: &Filter, f: &mut dyn FnMut(Info) -> Result<()>) -> Result<()> {
        self.store.walk(filter, f)
    }

    fn cleanup(&self) -> Result<()> {
        let _alone = self
            .folders
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let known = self.store.ids()?;
        let snapshots = self.snapshots_dir();
        let entries =
            std::fs::read_dir(&snapshots).map_err(|e| Error::io("listing", &snapshots, e))?;
        let mut first_error = None;
        for entry in entries {
            let entry = entry.map_err(|e| Error::io("listing", &snapshots, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let keep = name.parse::<u64>().is_ok_and(|id| known.contains_key(&id));
            if keep {
                continue;
            }
            let path = entry.path();
            tracing::info!(folder = %path.display(), "cleanup: removing an orphan");
            if let Err(e) = std::fs::remove_dir_all(&path) {
                first_error.get_or_insert(Error::io("removing", &path, e));
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}
