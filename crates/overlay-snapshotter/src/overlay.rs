//! The overlay snapshotter: directories by snapshot id, overlayfs mounts over them.

use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use ctrd_snapshots::{
    Error, Filter, Info, Kind, Labels, MetaStore, Mount, Result, Snapshot, Snapshotter, Usage,
};

use ctrd_mount::idmap::IdMap;

use crate::spare::Spare;
use crate::{Options, disk_usage};

/// The label holding a snapshot's uid map (containerd's `CONTAINER:HOST:SIZE,...`).
pub const UID_MAPPING_LABEL: &str = "containerd.io/snapshot/uidmapping";
/// The label holding a snapshot's gid map.
pub const GID_MAPPING_LABEL: &str = "containerd.io/snapshot/gidmapping";
/// The label containerd's unpacker puts on a layer's extraction snapshot: the chain id of
/// the layer below. In parallel unpack (containerd 2.x, snapshotters declaring `rebase`) it
/// prepares that snapshot without a parent and names the real one only in `Commit`.
pub const PARENT_CHAIN_ID_LABEL: &str = "containerd.io/snapshot/parent-chain-id";
/// What the log says when such a snapshot is prepared.
pub const UNPACKED_BEFORE_PARENT: &str = "layer prepared before its parent (parallel unpack)";

/// The id map a snapshot's labels ask for, if any; a map that does not parse, or leaves
/// the container's root unmapped, is refused (InvalidArgument).
fn id_map(key: &str, labels: &Labels) -> Result<Option<IdMap>> {
    let uids = labels.get(UID_MAPPING_LABEL);
    let gids = labels.get(GID_MAPPING_LABEL);
    if uids.is_none() && gids.is_none() {
        return Ok(None);
    }
    let bad = |reason: String| Error::BadIdMapping {
        key: key.into(),
        reason,
    };
    let map = IdMap::parse(
        uids.map_or("", String::as_str),
        gids.map_or("", String::as_str),
    )
    .map_err(bad)?;
    map.root().map_err(|e| bad(e.to_owned()))?;
    Ok(Some(map))
}

/// containerd's overlay snapshotter, in Rust.
#[derive(Debug)]
pub struct OverlaySnapshotter {
    root: PathBuf,
    store: MetaStore,
    options: Options,
    /// Folder work holds it shared; `Cleanup` holds it alone while it picks the orphans and
    /// moves them aside, so it never takes a folder that a call is still making or removing.
    /// It deletes them after letting go, so calls do not wait for the deletions.
    folders: Arc<RwLock<()>>,
    /// The folders of the next active snapshot, made ahead.
    spare: Spare,
    /// Held by `Cleanup` for its whole run: one deletes at a time.
    cleaning: std::sync::Mutex<()>,
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
        let empty = root.join("empty");
        match std::fs::DirBuilder::new().mode(0o755).create(&empty) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(Error::io("creating", &empty, e)),
        }
        let store = MetaStore::open(&root.join("metadata.redb"))?;
        let folders = Arc::new(RwLock::new(()));
        let spare = Spare::start(root.join("spare"), Arc::clone(&folders))?;
        Ok(OverlaySnapshotter {
            root: root.to_owned(),
            store,
            options,
            folders,
            spare,
            cleaning: std::sync::Mutex::new(()),
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

    /// The empty folder that is the lower layer of an active snapshot whose parent comes
    /// only at its commit (see [`PARENT_CHAIN_ID_LABEL`]).
    fn empty_lower(&self) -> PathBuf {
        self.root.join("empty")
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
        let map = id_map(key, &labels)?;
        if map.is_some() && kind == Kind::View && !self.options.idmapped_mounts {
            return Err(Error::Unsupported {
                what: "an id-mapped view without idmapped mounts (only active snapshots can \
                       be chowned)"
                    .into(),
            });
        }
        let _shared = self.shared();
        let spare = if kind == Kind::Active {
            self.spare.take()
        } else {
            None
        };
        let (staging, made) = match spare {
            Some(ready) => (ready, Ok(())),
            None => {
                let n = self.staging.fetch_add(1, Ordering::Relaxed);
                let staging = self
                    .snapshots_dir()
                    .join(format!("new-{}-{n}", std::process::id()));
                let made = make_layout(&staging, kind);
                (staging, made)
            }
        };
        let result = made.and_then(|()| {
            self.store.create(kind, key, parent, labels, |snapshot| {
                // A new layer's root belongs to the container's root where the labels map
                // one, and otherwise to whoever owns its parent's root.
                let owner = match (&map, snapshot.parent_ids.first()) {
                    (Some(map), _) => Some(map.root().map_err(|e| Error::BadIdMapping {
                        key: key.into(),
                        reason: e.to_owned(),
                    })?),
                    (None, Some(parent)) => {
                        let parent_fs = self.dir(*parent).join("fs");
                        let meta = std::fs::metadata(&parent_fs)
                            .map_err(|e| Error::io("reading", &parent_fs, e))?;
                        Some((meta.uid(), meta.gid()))
                    }
                    (None, None) => None,
                };
                if let Some((uid, gid)) = owner {
                    let fs = staging.join("fs");
                    nix::unistd::chown(
                        &fs,
                        Some(nix::unistd::Uid::from_raw(uid)),
                        Some(nix::unistd::Gid::from_raw(gid)),
                    )
                    .map_err(|e| Error::io("changing the owner of", &fs, e.into()))?;
                }
                let dir = self.dir(snapshot.id);
                if dir.exists() {
                    // A crash after this rename and before the commit left a folder under
                    // an id the store never recorded, and so hands out again: set it aside
                    // for `Cleanup`.
                    let n = self.staging.fetch_add(1, Ordering::Relaxed);
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
        let snapshot = match result {
            Ok((snapshot, ())) => snapshot,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&staging);
                return Err(e);
            }
        };
        let mounts = self.mounts_of(&snapshot);
        if kind == Kind::Active
            && snapshot.parent_ids.is_empty()
            && let Some(parent) = snapshot.labels.get(PARENT_CHAIN_ID_LABEL)
        {
            tracing::info!(
                key,
                parent = parent.as_str(),
                "{UNPACKED_BEFORE_PARENT}: an overlay over an empty lower"
            );
        }
        if let Some(map) = &map
            && !self.options.idmapped_mounts
            && !snapshot.parent_ids.is_empty()
        {
            drop(_shared);
            if let Err(e) = self.chown_through(&mounts, map) {
                // Leave nothing half-mapped behind.
                let _ = self.remove(key);
                return Err(e);
            }
        }
        Ok(mounts)
    }

    /// Mounts `mounts` on a private folder and chowns everything in them by `map`.
    fn chown_through(&self, mounts: &[Mount], map: &IdMap) -> Result<()> {
        let n = self.staging.fetch_add(1, Ordering::Relaxed);
        let at = self
            .root
            .join("remap")
            .join(format!("{}-{n}", std::process::id()));
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&at)
            .map_err(|e| Error::io("creating", &at, e))?;
        let result = ctrd_mount::mount_all(mounts, &at)
            .map_err(Error::from)
            .and_then(|()| {
                let chowned = crate::remap::chown_tree(&at, map);
                ctrd_mount::unmount_all(&at);
                chowned
            });
        // Only ever an empty mount point: never remove a tree here.
        let _ = std::fs::remove_dir(&at);
        result
    }

    /// The mounts containerd's overlay snapshotter returns for `snapshot`.
    fn mounts_of(&self, snapshot: &Snapshot) -> Vec<Mount> {
        let parents = &snapshot.parent_ids;
        // Idmapped mounts show the parents' files through the snapshot's id maps; a
        // snapshot without parents has nothing below to map (its root is chowned).
        let mut idmap = Vec::new();
        if self.options.idmapped_mounts
            && !parents.is_empty()
            && (snapshot.labels.contains_key(UID_MAPPING_LABEL)
                || snapshot.labels.contains_key(GID_MAPPING_LABEL))
        {
            for (option, label) in [("uidmap", UID_MAPPING_LABEL), ("gidmap", GID_MAPPING_LABEL)] {
                let map = snapshot.labels.get(label).map_or("", String::as_str);
                idmap.push(format!("{option}={map}"));
            }
        }
        let bind = |source: String, ro: bool, mut options: Vec<String>| {
            options.push(if ro { "ro" } else { "rw" }.into());
            options.push("rbind".into());
            vec![Mount {
                kind: "bind".into(),
                source,
                target: String::new(),
                options,
            }]
        };
        match (snapshot.kind, parents.as_slice()) {
            // A layer that containerd unpacks before the one below it and rebases onto it
            // at commit: an overlay over an empty lower, so its applier writes deletions and
            // opaque folders as overlay whiteouts into the upper (over a bind it would delete
            // from an empty folder and lose them).
            (Kind::Active, []) if snapshot.labels.contains_key(PARENT_CHAIN_ID_LABEL) => {
                let dir = self.dir(snapshot.id);
                let mut options = Vec::new();
                if self.options.index_off {
                    options.push("index=off".to_owned());
                }
                if self.options.userxattr {
                    options.push("userxattr".to_owned());
                }
                options.push(format!("workdir={}", dir.join("work").display()));
                options.push(format!("upperdir={}", dir.join("fs").display()));
                options.push(format!("lowerdir={}", self.empty_lower().display()));
                vec![Mount {
                    kind: "overlay".into(),
                    source: "overlay".into(),
                    target: String::new(),
                    options,
                }]
            }
            (Kind::Active, []) => bind(self.fs(snapshot.id), false, Vec::new()),
            (Kind::View | Kind::Committed, []) => bind(self.fs(snapshot.id), true, Vec::new()),
            (Kind::View | Kind::Committed, [only]) => bind(self.fs(*only), true, idmap),
            _ => {
                let mut options = idmap;
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

    /// The folders `Cleanup` deletes, under names no call uses: snapshot folders the store
    /// does not know and half-made ones (moved aside first), folders removals set aside, and
    /// spares but the ready one. Call with the folder lock held alone; a folder that cannot
    /// be moved aside is left, and its error kept in `first_error`.
    fn set_aside_orphans(&self, first_error: &mut Option<Error>) -> Result<Vec<PathBuf>> {
        let known = self.store.ids()?;
        let snapshots = self.snapshots_dir();
        let entries =
            std::fs::read_dir(&snapshots).map_err(|e| Error::io("listing", &snapshots, e))?;
        let mut doomed = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::io("listing", &snapshots, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.parse::<u64>().is_ok_and(|id| known.contains_key(&id)) {
                continue;
            }
            let path = entry.path();
            if name.starts_with("rm-") {
                // Set aside by a removal: no call names it again.
                doomed.push(path);
                continue;
            }
            // An id the store does not know, or a half-made folder: a later call could reuse
            // its name, so it moves to a name of its own first.
            let n = self.staging.fetch_add(1, Ordering::Relaxed);
            let aside = snapshots.join(format!("rm-cleanup-{}-{n}", std::process::id()));
            match std::fs::rename(&path, &aside) {
                Ok(()) => doomed.push(aside),
                Err(e) => {
                    first_error.get_or_insert(Error::io("setting aside", &path, e));
                }
            }
        }
        // Spare folders but the one ready: left by a crash or a stopped process.
        let keep = self.spare.current();
        let spares = self.spare.dir();
        let entries = std::fs::read_dir(spares).map_err(|e| Error::io("listing", spares, e))?;
        for entry in entries {
            let path = entry.map_err(|e| Error::io("listing", spares, e))?.path();
            if keep.as_ref() != Some(&path) {
                doomed.push(path);
            }
        }
        Ok(doomed)
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

/// Makes the folders of a snapshot of `kind` at `dir`: `dir` (0700), `fs` (exactly 0755)
/// and, for an active snapshot, `work` (0711).
pub(crate) fn make_layout(dir: &Path, kind: Kind) -> Result<()> {
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
        let _one = self
            .cleaning
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut first_error = None;
        let doomed = {
            let _alone = self
                .folders
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            self.set_aside_orphans(&mut first_error)?
        };
        for path in doomed {
            tracing::info!(folder = %path.display(), "cleanup: removing an orphan");
            match std::fs::remove_dir_all(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    first_error.get_or_insert(Error::io("removing", &path, e));
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}
