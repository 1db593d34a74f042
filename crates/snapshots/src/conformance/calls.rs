//! The Snapshots calls the cases make, one function each, in the target's namespace and lease:
//! public for cases of a snapshotter's own.

use std::collections::HashMap;

use ctrd_api::containerd::services::snapshots::v1 as api;
use ctrd_api::containerd::types::Mount;
use tonic::Status;

use super::Target;

/// Labels from pairs.
pub fn labels(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).into(), (*v).into()))
        .collect()
}

/// `Prepare` of `key` on `parent` (empty for none); the mounts.
pub async fn prepare(t: &Target, key: &str, parent: &str) -> Result<Vec<Mount>, Status> {
    prepare_labelled(t, key, parent, &[]).await
}

/// `Prepare` of `key` on `parent` with labels; the mounts.
pub async fn prepare_labelled(
    t: &Target,
    key: &str,
    parent: &str,
    pairs: &[(&str, &str)],
) -> Result<Vec<Mount>, Status> {
    t.snapshots()
        .prepare(t.request(api::PrepareSnapshotRequest {
            snapshotter: t.snapshotter(),
            key: key.into(),
            parent: parent.into(),
            labels: labels(pairs),
        }))
        .await
        .map(|r| r.into_inner().mounts)
}

/// `View` of `key` on `parent`; the mounts.
pub async fn view(t: &Target, key: &str, parent: &str) -> Result<Vec<Mount>, Status> {
    t.snapshots()
        .view(t.request(api::ViewSnapshotRequest {
            snapshotter: t.snapshotter(),
            key: key.into(),
            parent: parent.into(),
            labels: Default::default(),
        }))
        .await
        .map(|r| r.into_inner().mounts)
}

/// `Mounts` of `key`.
pub async fn mounts(t: &Target, key: &str) -> Result<Vec<Mount>, Status> {
    t.snapshots()
        .mounts(t.request(api::MountsRequest {
            snapshotter: t.snapshotter(),
            key: key.into(),
        }))
        .await
        .map(|r| r.into_inner().mounts)
}

/// `Commit` of active snapshot `key` as `name`.
pub async fn commit(t: &Target, name: &str, key: &str) -> Result<(), Status> {
    commit_labelled(t, name, key, &[]).await
}

/// `Commit` of active snapshot `key` as `name`, with labels.
pub async fn commit_labelled(
    t: &Target,
    name: &str,
    key: &str,
    pairs: &[(&str, &str)],
) -> Result<(), Status> {
    t.snapshots()
        .commit(t.request(api::CommitSnapshotRequest {
            snapshotter: t.snapshotter(),
            name: name.into(),
            key: key.into(),
            labels: labels(pairs),
            parent: String::new(),
        }))
        .await
        .map(drop)
}

/// `Commit` of active snapshot `key` as `name` onto `parent` (rebase; containerd 2.2+ sends
/// it through its Snapshots API, older daemons drop it).
pub async fn commit_onto(t: &Target, name: &str, key: &str, parent: &str) -> Result<(), Status> {
    t.snapshots()
        .commit(t.request(api::CommitSnapshotRequest {
            snapshotter: t.snapshotter(),
            name: name.into(),
            key: key.into(),
            labels: HashMap::new(),
            parent: parent.into(),
        }))
        .await
        .map(drop)
}

/// `Remove` of `key`.
pub async fn remove(t: &Target, key: &str) -> Result<(), Status> {
    t.snapshots()
        .remove(t.request(api::RemoveSnapshotRequest {
            snapshotter: t.snapshotter(),
            key: key.into(),
        }))
        .await
        .map(drop)
}

/// `Cleanup`: the snapshotter reclaims what no snapshot owns.
pub async fn cleanup(t: &Target) -> Result<(), Status> {
    t.snapshots()
        .cleanup(t.request(api::CleanupRequest {
            snapshotter: t.snapshotter(),
        }))
        .await
        .map(drop)
}

/// `Stat` of `key`.
pub async fn stat(t: &Target, key: &str) -> Result<api::Info, Status> {
    t.snapshots()
        .stat(t.request(api::StatSnapshotRequest {
            snapshotter: t.snapshotter(),
            key: key.into(),
        }))
        .await
        .map(|r| r.into_inner().info.unwrap_or_default())
}

/// `Usage` of `key`: bytes and inodes.
pub async fn usage(t: &Target, key: &str) -> Result<(i64, i64), Status> {
    t.snapshots()
        .usage(t.request(api::UsageRequest {
            snapshotter: t.snapshotter(),
            key: key.into(),
        }))
        .await
        .map(|r| {
            let r = r.into_inner();
            (r.size, r.inodes)
        })
}

/// `Update` of `key`'s labels along the field paths given.
pub async fn update(
    t: &Target,
    key: &str,
    pairs: &[(&str, &str)],
    paths: &[&str],
) -> Result<api::Info, Status> {
    t.snapshots()
        .update(t.request(api::UpdateSnapshotRequest {
            snapshotter: t.snapshotter(),
            info: Some(api::Info {
                name: key.into(),
                labels: labels(pairs),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: paths.iter().map(|p| (*p).to_owned()).collect(),
            }),
        }))
        .await
        .map(|r| r.into_inner().info.unwrap_or_default())
}

/// Names of the snapshots `filters` select, sorted.
pub async fn list(t: &Target, filters: &[&str]) -> Result<Vec<String>, Status> {
    let mut stream = t
        .snapshots()
        .list(t.request(api::ListSnapshotsRequest {
            snapshotter: t.snapshotter(),
            filters: filters.iter().map(|f| (*f).to_owned()).collect(),
        }))
        .await?
        .into_inner();
    let mut names = Vec::new();
    while let Some(batch) = stream.message().await? {
        names.extend(batch.info.into_iter().map(|i| i.name));
    }
    names.sort();
    Ok(names)
}
