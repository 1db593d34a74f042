//! Unpacking an image's layers into a snapshotter, one committed snapshot per chain id.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use ctrd_api::containerd::services::diff::v1 as diff;
use ctrd_api::containerd::services::snapshots::v1 as snapshots;
use ctrd_api::containerd::types::Descriptor;

use super::{ImportOptions, Platform, Progress, oci};
use crate::{Client, Error};

/// How long an unpack's lease lives if this process dies before removing it.
const LEASE_EXPIRY: Duration = Duration::from_secs(3600);

impl Client {
    /// Unpacks image `name` (its manifest for this machine's platform) into `snapshotter`;
    /// returns the chain id of the top layer, the parent a container's snapshot is prepared
    /// from. Layers already unpacked are skipped.
    pub async fn unpack(&self, name: &str, snapshotter: &str) -> Result<String, Error> {
        self.unpack_reporting(name, snapshotter, &ImportOptions::default(), None)
            .await
    }

    pub(crate) async fn unpack_reporting(
        &self,
        name: &str,
        snapshotter: &str,
        options: &ImportOptions,
        platform: Option<&Platform>,
    ) -> Result<String, Error> {
        let lease = self.lease(LEASE_EXPIRY).await?;
        let result = lease
            .client()
            .unpack_in_lease(name, snapshotter, options, platform)
            .await;
        let released = lease.release().await;
        let top = result?;
        released?;
        Ok(top)
    }

    async fn unpack_in_lease(
        &self,
        name: &str,
        snapshotter: &str,
        options: &ImportOptions,
        platform: Option<&Platform>,
    ) -> Result<String, Error> {
        let resolved = self.resolve(name, platform).await?;
        let diff_ids = &resolved.config.rootfs.diff_ids;
        let chain = oci::chain_ids(diff_ids);
        let layers = resolved.manifest.layers.len();
        for i in 0..layers {
            self.unpack_layer(snapshotter, &resolved.manifest.layers, diff_ids, &chain, i)
                .await?;
            options.report(Progress::Layer {
                image: name.to_owned(),
                done: i + 1,
                layers,
            });
        }
        let top = chain.last().cloned().unwrap_or_default();
        // The config keeps the unpacked snapshots alive for as long as the image lives.
        self.label_blob(
            &resolved.manifest.config.digest,
            HashMap::from([(
                format!("containerd.io/gc.ref.snapshot.{snapshotter}"),
                top.clone(),
            )]),
        )
        .await?;
        Ok(top)
    }

    /// Unpacks `layers` (whose uncompressed digests are `diff_ids`) into `snapshotter` bottom
    /// first while they download: layer `i` once `arrivals[i]` fires and the layers below it
    /// are applied. Returns the top chain id. An arrival that never comes (its download
    /// failed) parks the unpacker, so the download's own error is what the caller sees.
    pub(crate) async fn unpack_as_fetched(
        &self,
        image: &str,
        snapshotter: &str,
        layers: &[oci::Descriptor],
        diff_ids: &[String],
        arrivals: Vec<tokio::sync::oneshot::Receiver<()>>,
        options: &ImportOptions,
    ) -> Result<String, Error> {
        let chain = oci::chain_ids(diff_ids);
        for (i, arrival) in arrivals.into_iter().enumerate() {
            if arrival.await.is_err() {
                std::future::pending::<()>().await;
            }
            self.unpack_layer(snapshotter, layers, diff_ids, &chain, i)
                .await?;
            options.report(Progress::Layer {
                image: image.to_owned(),
                done: i + 1,
                layers: layers.len(),
            });
        }
        Ok(chain.last().cloned().unwrap_or_default())
    }

    /// Applies layer `i` onto the snapshot of the layers below it, unless it is unpacked
    /// already.
    async fn unpack_layer(
        &self,
        snapshotter: &str,
        layers: &[oci::Descriptor],
        diff_ids: &[String],
        chain: &[String],
        i: usize,
    ) -> Result<(), Error> {
        let parent = if i == 0 { "" } else { chain[i - 1].as_str() };
        if self.snapshot_exists(snapshotter, &chain[i]).await? {
            return Ok(());
        }
        self.apply_layer(snapshotter, &layers[i], &diff_ids[i], &chain[i], parent)
            .await
    }

    /// Whether snapshot `key` exists in `snapshotter`.
    pub async fn snapshot_exists(&self, snapshotter: &str, key: &str) -> Result<bool, Error> {
        let request = snapshots::StatSnapshotRequest {
            snapshotter: snapshotter.to_owned(),
            key: key.to_owned(),
        };
        match self
            .unary(
                "snapshots.Stat",
                format!("snapshot {key} in {snapshotter}"),
                async { self.snapshots().stat(request).await },
            )
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn apply_layer(
        &self,
        snapshotter: &str,
        layer: &oci::Descriptor,
        diff_id: &str,
        chain_id: &str,
        parent: &str,
    ) -> Result<(), Error> {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let key = format!("extract-{nanos}-{chain_id}");
        let object = format!("snapshot {key} in {snapshotter}");
        let prepare = snapshots::PrepareSnapshotRequest {
            snapshotter: snapshotter.to_owned(),
            key: key.clone(),
            parent: parent.to_owned(),
            labels: HashMap::new(),
        };
        let mounts = self
            .unary("snapshots.Prepare", &object, async {
                self.snapshots().prepare(prepare).await
            })
            .await?
            .mounts;
        let result = async {
            let apply = diff::ApplyRequest {
                diff: Some(Descriptor {
                    media_type: layer.media_type.clone(),
                    digest: layer.digest.clone(),
                    size: i64::try_from(layer.size).unwrap_or_default(),
                    annotations: HashMap::new(),
                }),
                mounts,
                payloads: HashMap::new(),
                sync_fs: false,
            };
            let applied = self
                .unary("diff.Apply", format!("layer {}", layer.digest), async {
                    self.diff().apply(apply).await
                })
                .await?
                .applied
                .unwrap_or_default();
            if applied.digest != diff_id {
                return Err(Error::DigestMismatch {
                    expected: diff_id.to_owned(),
                    actual: applied.digest,
                });
            }
            let commit = snapshots::CommitSnapshotRequest {
                snapshotter: snapshotter.to_owned(),
                name: chain_id.to_owned(),
                key: key.clone(),
                labels: HashMap::new(),
                parent: String::new(),
            };
            self.unary("snapshots.Commit", &object, async {
                self.snapshots().commit(commit).await
            })
            .await
            .map(|_| ())
        }
        .await;
        if result.is_err() {
            let remove = snapshots::RemoveSnapshotRequest {
                snapshotter: snapshotter.to_owned(),
                key,
            };
            let _ = self.snapshots().remove(remove).await;
        }
        result
    }
}
