//! The metadata store every snapshotter needs, on redb: one crash-safe transaction per change.
//!
//! It knows keys, ids, parents, kinds, labels, timestamps and the usage of committed
//! snapshots, and nothing of filesystems. Each snapshot gets a numeric id that never changes
//! (commit keeps it), so a filesystem layer names its directories by id; the id map lets
//! `Cleanup` tell the directories the store knows from those a crash left behind.
//!
//! Slow work stays outside the write transaction: callers walk directories for usage or
//! remove trees before or after, and hand the store only the result. The one hook inside a
//! transaction, [`MetaStore::create`]'s `then`, is meant for a rename.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{PoisonError, RwLock};
use std::time::SystemTime;

use redb::{
    Database, MultimapTableDefinition, ReadableDatabase, ReadableMultimapTable, ReadableTable,
    TableDefinition, WriteTransaction,
};
use serde::{Deserialize, Serialize};

use crate::{Error, Filter, Info, Kind, Labels, MAX_LABEL_SIZE, Result, Usage};

/// key → JSON [`Record`].
const SNAPSHOTS: TableDefinition<&str, &[u8]> = TableDefinition::new("snapshots");
/// parent key → child keys.
const CHILDREN: MultimapTableDefinition<&str, &str> = MultimapTableDefinition::new("children");
/// id → key: what `Cleanup` compares with the directories.
const IDS: TableDefinition<u64, &str> = TableDefinition::new("ids");
/// Counters (`next_id`).
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

/// The label prefix whose labels a committed snapshot inherits from its active snapshot.
pub const INHERITED_LABEL_PREFIX: &str = "containerd.io/snapshot/";

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    id: u64,
    kind: Kind,
    parent: Option<String>,
    labels: Labels,
    created_at: SystemTime,
    updated_at: SystemTime,
    usage: Option<Usage>,
}

/// What a filesystem layer needs of one snapshot to lay out its mounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Its id, which names its directory.
    pub id: u64,
    /// Its kind.
    pub kind: Kind,
    /// The ids of its parent chain, nearest parent first.
    pub parent_ids: Vec<u64>,
    /// Its labels (a filesystem layer may lay out mounts by them, such as id mappings).
    pub labels: Labels,
}

/// The metadata store: a redb database file.
///
/// After an I/O error (a full disk, say) redb refuses every later transaction until the
/// database is closed and opened again; the store does that itself: the call that met the
/// error closes the database, and the next call opens it again (repairing it if needed), so
/// the store works again as soon as the disk does.
///
/// A removal must work on a full disk too (it is how space is given back), but a redb commit
/// needs room. So the store keeps a reserve beside the database: a file of
/// [`RESERVE_BYTES`] allocated on the same filesystem (`DATABASE.reserve`). A
/// [`MetaStore::remove`] that fails for lack of room gives the reserve up and tries once more;
/// the reserve is taken again after a later write commits, when there is room for it.
#[derive(Debug)]
pub struct MetaStore {
    path: PathBuf,
    /// `None` between a call that met an I/O error and the next call.
    db: RwLock<Option<Database>>,
    /// Whether the reserve file is in place (checked before trying to take it again).
    reserve_held: AtomicBool,
}

/// The room the store keeps for removals on a full disk, in bytes.
pub const RESERVE_BYTES: u64 = 1 << 20;

/// Opens (or creates) the database at `path` with every table in it.
fn open_database(path: &Path, call: &'static str) -> Result<Database> {
    let db = Database::create(path).map_err(|e| Error::store(call, e))?;
    let txn = db.begin_write().map_err(|e| Error::store(call, e))?;
    {
        txn.open_table(SNAPSHOTS)
            .map_err(|e| Error::store("creating tables", e))?;
        txn.open_multimap_table(CHILDREN)
            .map_err(|e| Error::store("creating tables", e))?;
        txn.open_table(IDS)
            .map_err(|e| Error::store("creating tables", e))?;
        txn.open_table(META)
            .map_err(|e| Error::store("creating tables", e))?;
    }
    txn.commit()
        .map_err(|e| Error::store("creating tables", e))?;
    Ok(db)
}

impl MetaStore {
    /// Opens (or creates) the store at `path`.
    pub fn open(path: &Path) -> Result<MetaStore> {
        let db = open_database(path, "opening the database")?;
        let store = MetaStore {
            path: path.to_owned(),
            db: RwLock::new(Some(db)),
            reserve_held: AtomicBool::new(false),
        };
        store.take_reserve();
        Ok(store)
    }

    /// The reserve file's path: the database's, with `.reserve` added.
    fn reserve_path(&self) -> PathBuf {
        let mut name = self.path.file_name().unwrap_or_default().to_os_string();
        name.push(".reserve");
        self.path.with_file_name(name)
    }

    /// Allocates the reserve file if it is not in place; where there is no room, it is left
    /// out (and tried again after the next write).
    fn take_reserve(&self) {
        if self.reserve_held.load(Ordering::Relaxed) {
            return;
        }
        let path = self.reserve_path();
        let taken = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .and_then(|file| {
                nix::fcntl::fallocate(
                    &file,
                    nix::fcntl::FallocateFlags::empty(),
                    0,
                    RESERVE_BYTES as i64,
                )
                .map_err(std::io::Error::from)
            });
        match taken {
            Ok(()) => self.reserve_held.store(true, Ordering::Relaxed),
            Err(_) => {
                let _ = std::fs::remove_file(&path);
            }
        }
    }

    /// Gives the reserve up; whether there was one to give.
    fn give_up_reserve(&self) -> bool {
        self.reserve_held.store(false, Ordering::Relaxed);
        std::fs::remove_file(self.reserve_path()).is_ok()
    }

    /// After a write's `result`: on success, takes the reserve again if it was given up.
    fn after_write<T>(&self, result: Result<T>) -> Result<T> {
        if result.is_ok() {
            self.take_reserve();
        }
        result
    }

    /// Records a new active snapshot or view `key` on `parent` (which must be committed) and
    /// runs `then` with its id before the transaction commits: if `then` fails, nothing is
    /// recorded. `then` should be quick (a rename); a crash after it and before the commit
    /// leaves a directory only `Cleanup` knows to remove.
    pub fn create<T>(
        &self,
        kind: Kind,
        key: &str,
        parent: Option<&str>,
        labels: Labels,
        then: impl FnOnce(&Snapshot) -> Result<T>,
    ) -> Result<(Snapshot, T)> {
        self.after_write(
            self.closed_after_io_error(self.create_once(kind, key, parent, labels, then)),
        )
    }

    /// [`MetaStore::create`], without closing the database after an I/O error.
    fn create_once<T>(
        &self,
        kind: Kind,
        key: &str,
        parent: Option<&str>,
        labels: Labels,
        then: impl FnOnce(&Snapshot) -> Result<T>,
    ) -> Result<(Snapshot, T)> {
        check_key(key)?;
        check_labels(&labels)?;
        if kind == Kind::Committed {
            return Err(Error::WrongKind {
                key: key.into(),
                kind: kind.as_str(),
                call: "create",
                wanted: "active or view",
            });
        }
        let txn = self.write("create")?;
        let snapshot = {
            let mut snapshots = txn
                .open_table(SNAPSHOTS)
                .map_err(|e| Error::store("create", e))?;
            if snapshots
                .get(key)
                .map_err(|e| Error::store("create", e))?
                .is_some()
            {
                return Err(Error::AlreadyExists { key: key.into() });
            }
            let parent_ids = match parent {
                Some(parent) => {
                    let record = read_record(&snapshots, parent)?;
                    if record.kind != Kind::Committed {
                        return Err(Error::ParentNotCommitted {
                            parent: parent.into(),
                            kind: record.kind.as_str(),
                        });
                    }
                    let mut ids = vec![record.id];
                    ids.extend(parent_chain(&snapshots, record.parent.as_deref())?);
                    ids
                }
                None => Vec::new(),
            };
            let id = next_id(&txn)?;
            let now = SystemTime::now();
            let record = Record {
                id,
                kind,
                parent: parent.map(str::to_owned),
                labels: labels.clone(),
                created_at: now,
                updated_at: now,
                usage: None,
            };
            write_record(&mut snapshots, key, &record)?;
            txn.open_table(IDS)
                .map_err(|e| Error::store("create", e))?
                .insert(id, key)
                .map_err(|e| Error::store("create", e))?;
            if let Some(parent) = parent {
                txn.open_multimap_table(CHILDREN)
                    .map_err(|e| Error::store("create", e))?
                    .insert(parent, key)
                    .map_err(|e| Error::store("create", e))?;
            }
            Snapshot {
                id,
                kind,
                parent_ids,
                labels,
            }
        };
        let value = then(&snapshot)?;
        txn.commit().map_err(|e| Error::store("create", e))?;
        Ok((snapshot, value))
    }

    /// The snapshot `key`: its id, kind and parent chain.
    pub fn get(&self, key: &str) -> Result<Snapshot> {
        self.closed_after_io_error(self.get_once(key))
    }

    /// [`MetaStore::get`], without closing the database after an I/O error.
    fn get_once(&self, key: &str) -> Result<Snapshot> {
        let txn = self.read("get")?;
        let snapshots = txn
            .open_table(SNAPSHOTS)
            .map_err(|e| Error::store("get", e))?;
        let record = read_record(&snapshots, key)?;
        Ok(Snapshot {
            id: record.id,
            kind: record.kind,
            parent_ids: parent_chain(&snapshots, record.parent.as_deref())?,
            labels: record.labels,
        })
    }

    /// What is known of `key`.
    pub fn stat(&self, key: &str) -> Result<Info> {
        self.closed_after_io_error(self.stat_once(key))
    }

    /// [`MetaStore::stat`], without closing the database after an I/O error.
    fn stat_once(&self, key: &str) -> Result<Info> {
        let txn = self.read("stat")?;
        let snapshots = txn
            .open_table(SNAPSHOTS)
            .map_err(|e| Error::store("stat", e))?;
        Ok(info(key, read_record(&snapshots, key)?))
    }

    /// The stored usage of `key` (committed snapshots only) with its id and kind.
    pub fn usage(&self, key: &str) -> Result<(Snapshot, Option<Usage>)> {
        self.closed_after_io_error(self.usage_once(key))
    }

    /// [`MetaStore::usage`], without closing the database after an I/O error.
    fn usage_once(&self, key: &str) -> Result<(Snapshot, Option<Usage>)> {
        let txn = self.read("usage")?;
        let snapshots = txn
            .open_table(SNAPSHOTS)
            .map_err(|e| Error::store("usage", e))?;
        let record = read_record(&snapshots, key)?;
        let snapshot = Snapshot {
            id: record.id,
            kind: record.kind,
            parent_ids: Vec::new(),
            labels: record.labels,
        };
        Ok((snapshot, record.usage))
    }

    /// Updates the labels of `info.name` from `info.labels`: all of them when `fieldpaths`
    /// is empty or holds `labels`, one label per `labels.KEY` path (removed when `info`
    /// lacks it). Other fields cannot change.
    pub fn update(&self, info: Info, fieldpaths: &[String]) -> Result<Info> {
        self.after_write(self.closed_after_io_error(self.update_once(info, fieldpaths)))
    }

    /// [`MetaStore::update`], without closing the database after an I/O error.
    fn update_once(&self, info: Info, fieldpaths: &[String]) -> Result<Info> {
        check_labels(&info.labels)?;
        for path in fieldpaths {
            if path != "labels" && !path.starts_with("labels.") {
                return Err(Error::BadFieldPath { path: path.clone() });
            }
        }
        let txn = self.write("update")?;
        let updated = {
            let mut snapshots = txn
                .open_table(SNAPSHOTS)
                .map_err(|e| Error::store("update", e))?;
            let mut record = read_record(&snapshots, &info.name)?;
            if fieldpaths.is_empty() || fieldpaths.iter().any(|p| p == "labels") {
                record.labels = info.labels;
            } else {
                for path in fieldpaths {
                    let key = &path["labels.".len()..];
                    match info.labels.get(key) {
                        Some(value) => {
                            record.labels.insert(key.to_owned(), value.clone());
                        }
                        None => {
                            record.labels.remove(key);
                        }
                    }
                }
            }
            check_labels(&record.labels)?;
            record.updated_at = SystemTime::now();
            write_record(&mut snapshots, &info.name, &record)?;
            self::info(&info.name, record)
        };
        txn.commit().map_err(|e| Error::store("update", e))?;
        Ok(updated)
    }

    /// Commits active snapshot `key` (whose id the caller read as `id` before measuring
    /// `usage`) as `name`, on `rebase` instead of its own parent when given. The committed
    /// snapshot keeps the id, inherits the active one's `containerd.io/snapshot/` labels and
    /// takes `labels` over them.
    pub fn commit(
        &self,
        key: &str,
        name: &str,
        id: u64,
        rebase: Option<&str>,
        labels: Labels,
        usage: Usage,
    ) -> Result<()> {
        self.after_write(
            self.closed_after_io_error(self.commit_once(key, name, id, rebase, labels, usage)),
        )
    }

    /// [`MetaStore::commit`], without closing the database after an I/O error.
    fn commit_once(
        &self,
        key: &str,
        name: &str,
        id: u64,
        rebase: Option<&str>,
        labels: Labels,
        usage: Usage,
    ) -> Result<()> {
        check_key(name)?;
        check_labels(&labels)?;
        let txn = self.write("commit")?;
        {
            let mut snapshots = txn
                .open_table(SNAPSHOTS)
                .map_err(|e| Error::store("commit", e))?;
            let active = read_record(&snapshots, key)?;
            if active.kind != Kind::Active {
                return Err(Error::WrongKind {
                    key: key.into(),
                    kind: active.kind.as_str(),
                    call: "commit",
                    wanted: "an active snapshot",
                });
            }
            if active.id != id {
                // Removed and prepared again while the caller measured it.
                return Err(Error::NotFound { key: key.into() });
            }
            if snapshots
                .get(name)
                .map_err(|e| Error::store("commit", e))?
                .is_some()
            {
                return Err(Error::AlreadyExists { key: name.into() });
            }
            let parent = match (rebase, &active.parent) {
                // containerd's rule: no parent, or the same one, may be named at commit.
                (Some(rebase), Some(parent)) if rebase != parent => {
                    return Err(Error::ParentChanged {
                        key: key.into(),
                        parent: parent.clone(),
                        rebase: rebase.into(),
                    });
                }
                (Some(parent), _) => {
                    let record = read_record(&snapshots, parent)?;
                    if record.kind != Kind::Committed {
                        return Err(Error::ParentNotCommitted {
                            parent: parent.into(),
                            kind: record.kind.as_str(),
                        });
                    }
                    Some(parent.to_owned())
                }
                (None, _) => active.parent.clone(),
            };
            let mut merged: Labels = active
                .labels
                .into_iter()
                .filter(|(k, _)| k.starts_with(INHERITED_LABEL_PREFIX))
                .collect();
            merged.extend(labels);
            check_labels(&merged)?;
            let now = SystemTime::now();
            let record = Record {
                id,
                kind: Kind::Committed,
                parent: parent.clone(),
                labels: merged,
                created_at: now,
                updated_at: now,
                usage: Some(usage),
            };
            snapshots
                .remove(key)
                .map(drop)
                .map_err(|e| Error::store("commit", e))?;
            write_record(&mut snapshots, name, &record)?;
            let mut children = txn
                .open_multimap_table(CHILDREN)
                .map_err(|e| Error::store("commit", e))?;
            if let Some(old) = &active.parent {
                children
                    .remove(old.as_str(), key)
                    .map_err(|e| Error::store("commit", e))?;
            }
            if let Some(new) = &parent {
                children
                    .insert(new.as_str(), name)
                    .map_err(|e| Error::store("commit", e))?;
            }
            txn.open_table(IDS)
                .map_err(|e| Error::store("commit", e))?
                .insert(id, name)
                .map_err(|e| Error::store("commit", e))?;
        }
        txn.commit().map_err(|e| Error::store("commit", e))
    }

    /// Forgets `key`, which must have no children; returns its id and kind so the caller
    /// can remove its directory after the transaction.
    ///
    /// On a full disk the store gives up its reserve and tries once more (see [`MetaStore`]).
    pub fn remove(&self, key: &str) -> Result<(u64, Kind)> {
        // The room a removal frees comes back only when the caller removes the snapshot's
        // files, after this: the reserve is taken again by the next write, not here.
        match self.closed_after_io_error(self.remove_once(key)) {
            Err(e) if e.is_io() && self.give_up_reserve() => {
                self.closed_after_io_error(self.remove_once(key))
            }
            other => other,
        }
    }

    /// [`MetaStore::remove`], without closing the database after an I/O error.
    fn remove_once(&self, key: &str) -> Result<(u64, Kind)> {
        let txn = self.write("remove")?;
        let removed = {
            let mut snapshots = txn
                .open_table(SNAPSHOTS)
                .map_err(|e| Error::store("remove", e))?;
            let record = read_record(&snapshots, key)?;
            let mut children = txn
                .open_multimap_table(CHILDREN)
                .map_err(|e| Error::store("remove", e))?;
            let count = children
                .get(key)
                .map_err(|e| Error::store("remove", e))?
                .count();
            if count > 0 {
                return Err(Error::HasChildren {
                    key: key.into(),
                    children: count,
                });
            }
            if let Some(parent) = &record.parent {
                children
                    .remove(parent.as_str(), key)
                    .map_err(|e| Error::store("remove", e))?;
            }
            snapshots
                .remove(key)
                .map(drop)
                .map_err(|e| Error::store("remove", e))?;
            txn.open_table(IDS)
                .map_err(|e| Error::store("remove", e))?
                .remove(record.id)
                .map_err(|e| Error::store("remove", e))?;
            (record.id, record.kind)
        };
        txn.commit().map_err(|e| Error::store("remove", e))?;
        Ok(removed)
    }

    /// Calls `f` with every snapshot `filter` matches, in key order, from one consistent
    /// read (writers are not blocked meanwhile).
    pub fn walk(&self, filter: &Filter, f: &mut dyn FnMut(Info) -> Result<()>) -> Result<()> {
        self.closed_after_io_error(self.walk_once(filter, f))
    }

    /// [`MetaStore::walk`], without closing the database after an I/O error.
    fn walk_once(&self, filter: &Filter, f: &mut dyn FnMut(Info) -> Result<()>) -> Result<()> {
        let txn = self.read("walk")?;
        let snapshots = txn
            .open_table(SNAPSHOTS)
            .map_err(|e| Error::store("walk", e))?;
        for entry in snapshots.iter().map_err(|e| Error::store("walk", e))? {
            let (key, value) = entry.map_err(|e| Error::store("walk", e))?;
            let record = decode(key.value(), value.value())?;
            let info = info(key.value(), record);
            if filter.matches(&info) {
                f(info)?;
            }
        }
        Ok(())
    }

    /// Every id the store knows, with its key: directories named otherwise are orphans.
    pub fn ids(&self) -> Result<BTreeMap<u64, String>> {
        self.closed_after_io_error(self.ids_once())
    }

    /// [`MetaStore::ids`], without closing the database after an I/O error.
    fn ids_once(&self) -> Result<BTreeMap<u64, String>> {
        let txn = self.read("listing ids")?;
        let ids = txn
            .open_table(IDS)
            .map_err(|e| Error::store("listing ids", e))?;
        let mut out = BTreeMap::new();
        for entry in ids.iter().map_err(|e| Error::store("listing ids", e))? {
            let (id, key) = entry.map_err(|e| Error::store("listing ids", e))?;
            out.insert(id.value(), key.value().to_owned());
        }
        Ok(out)
    }

    fn read(&self, call: &'static str) -> Result<redb::ReadTransaction> {
        self.with_database(|db| db.begin_read().map_err(|e| Error::store(call, e)))
    }

    fn write(&self, call: &'static str) -> Result<WriteTransaction> {
        self.with_database(|db| db.begin_write().map_err(|e| Error::store(call, e)))
    }

    /// Runs `begin` on the open database, opening it again first if an I/O error closed it.
    fn with_database<T>(&self, begin: impl FnOnce(&Database) -> Result<T>) -> Result<T> {
        {
            let db = self.db.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(db) = db.as_ref() {
                return begin(db);
            }
        }
        let mut db = self.db.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(db) = db.as_ref() {
            return begin(db);
        }
        let db = db.insert(open_database(
            &self.path,
            "opening the database again after an I/O error",
        )?);
        begin(db)
    }

    /// Closes the database when `result` is an I/O error of redb's, which it would repeat
    /// for every later transaction; the next call opens it again.
    fn closed_after_io_error<T>(&self, result: Result<T>) -> Result<T> {
        if result.as_ref().is_err_and(Error::is_io) {
            let mut db = self.db.write().unwrap_or_else(PoisonError::into_inner);
            *db = None;
        }
        result
    }
}

/// The longest snapshot key accepted, in bytes (containerd's own keys, `NS/ID/sha256:...`,
/// are about a hundred).
pub const MAX_KEY: usize = 4096;

/// Checks a snapshot key or name: not empty, at most [`MAX_KEY`] bytes, no NUL or control
/// character.
pub(crate) fn check_key(key: &str) -> Result<()> {
    let reason = if key.is_empty() {
        "it is empty"
    } else if key.len() > MAX_KEY {
        "it is longer than 4096 bytes"
    } else if key.chars().any(char::is_control) {
        "it holds a NUL or control character"
    } else {
        return Ok(());
    };
    let mut shown: String = key.escape_debug().take(100).collect();
    if shown.len() < key.len() {
        shown.push_str("...");
    }
    Err(Error::InvalidKey { key: shown, reason })
}

/// containerd's limit: a label's key and value together at most [`MAX_LABEL_SIZE`] bytes.
pub(crate) fn check_labels(labels: &Labels) -> Result<()> {
    for (key, value) in labels {
        let len = key.len() + value.len();
        if len > MAX_LABEL_SIZE {
            let mut label: String = key.chars().take(64).collect();
            if label.len() < key.len() {
                label.push_str("...");
            }
            return Err(Error::LabelTooLong { label, len });
        }
    }
    Ok(())
}

fn next_id(txn: &WriteTransaction) -> Result<u64> {
    let mut meta = txn
        .open_table(META)
        .map_err(|e| Error::store("allocating an id", e))?;
    let id = meta
        .get("next_id")
        .map_err(|e| Error::store("allocating an id", e))?
        .map_or(1, |v| v.value());
    meta.insert("next_id", id + 1)
        .map_err(|e| Error::store("allocating an id", e))?;
    Ok(id)
}

fn decode(key: &str, bytes: &[u8]) -> Result<Record> {
    serde_json::from_slice(bytes).map_err(|source| Error::Corrupt {
        key: key.into(),
        error: source,
    })
}

fn read_record(
    snapshots: &impl ReadableTable<&'static str, &'static [u8]>,
    key: &str,
) -> Result<Record> {
    let value = snapshots
        .get(key)
        .map_err(|e| Error::store("reading a record", e))?
        .ok_or_else(|| Error::NotFound { key: key.into() })?;
    decode(key, value.value())
}

fn write_record(
    snapshots: &mut redb::Table<&'static str, &'static [u8]>,
    key: &str,
    record: &Record,
) -> Result<()> {
    let bytes = serde_json::to_vec(record).map_err(|source| Error::Corrupt {
        key: key.into(),
        error: source,
    })?;
    snapshots
        .insert(key, bytes.as_slice())
        .map_err(|e| Error::store("writing a record", e))?;
    Ok(())
}

/// The ids of `parent` and its ancestors, nearest first.
fn parent_chain(
    snapshots: &impl ReadableTable<&'static str, &'static [u8]>,
    parent: Option<&str>,
) -> Result<Vec<u64>> {
    let mut ids = Vec::new();
    let mut next = parent.map(str::to_owned);
    while let Some(key) = next {
        let record = read_record(snapshots, &key)?;
        ids.push(record.id);
        next = record.parent;
    }
    Ok(ids)
}

fn info(key: &str, record: Record) -> Info {
    Info {
        name: key.to_owned(),
        parent: record.parent,
        kind: record.kind,
        labels: record.labels,
        created_at: record.created_at,
        updated_at: record.updated_at,
    }
}
