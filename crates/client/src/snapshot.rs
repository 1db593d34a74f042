//! Snapshots: listing and disk usage.

use ctrd_api::containerd::services::snapshots::v1 as snapshots;
use futures_util::StreamExt;

use crate::{Client, Error};

/// A snapshot.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SnapshotInfo {
    /// Its key (or committed name).
    pub name: String,
    /// Its parent's name, empty for none.
    pub parent: String,
    /// `Active`, `View` or `Committed`.
    pub kind: String,
}

/// Disk use of a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Usage {
    /// Bytes.
    pub size: i64,
    /// Inodes.
    pub inodes: i64,
}

impl Client {
    /// Every snapshot in `snapshotter`.
    pub async fn list_snapshots(&self, snapshotter: &str) -> Result<Vec<SnapshotInfo>, Error> {
        let request = snapshots::ListSnapshotsRequest {
            snapshotter: snapshotter.to_owned(),
            filters: vec![],
        };
        let object = format!("snapshotter {snapshotter}");
        let mut stream = self
            .unary("snapshots.List", &object, async {
                self.snapshots().list(request).await
            })
            .await?;
        let mut out = Vec::new();
        while let Some(batch) = stream.next().await {
            let batch = batch.map_err(|s| Error::call("snapshots.List", &object, s))?;
            out.extend(batch.info.into_iter().map(|i| {
                SnapshotInfo {
                    name: i.name,
                    parent: i.parent,
                    kind: snapshots::Kind::try_from(i.kind)
                        .map(|k| format!("{k:?}"))
                        .unwrap_or_else(|_| "Unknown".into()),
                }
            }));
        }
        Ok(out)
    }

    /// The disk use of snapshot `key` in `snapshotter`.
    pub async fn snapshot_usage(&self, snapshotter: &str, key: &str) -> Result<Usage, Error> {
        let request = snapshots::UsageRequest {
            snapshotter: snapshotter.to_owned(),
            key: key.to_owned(),
        };
        let usage = self
            .unary(
                "snapshots.Usage",
                format!("snapshot {key} in {snapshotter}"),
                async { self.snapshots().usage(request).await },
            )
            .await?;
        Ok(Usage {
            size: usage.size,
            inodes: usage.inodes,
        })
    }
}
