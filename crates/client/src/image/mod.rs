//! Images: import from archives, unpack into snapshotters, list, tag, remove.

pub(crate) mod archive;
pub(crate) mod oci;
mod pull;
pub(crate) mod registry;
mod unpack;

use std::collections::HashMap;
use std::time::SystemTime;

use ctrd_api::containerd::services::images::v1 as images;
use ctrd_api::containerd::types::Descriptor;
use tokio::sync::mpsc;

use crate::{Client, Error};

pub use oci::Platform;
pub use pull::PullOptions;
pub use registry::Credentials;

/// An image record.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Image {
    /// Its name, such as `docker.io/library/busybox:latest`.
    pub name: String,
    /// The media type of its target (an index or a manifest).
    pub media_type: String,
    /// The digest of its target.
    pub digest: String,
    /// The size of its target blob.
    pub size: u64,
    /// Its labels.
    pub labels: HashMap<String, String>,
    /// When it was created.
    #[serde(skip)]
    pub created_at: Option<SystemTime>,
}

impl Image {
    fn from_record(image: images::Image) -> Image {
        let target = image.target.unwrap_or_default();
        Image {
            name: image.name,
            media_type: target.media_type,
            digest: target.digest,
            size: u64::try_from(target.size).unwrap_or_default(),
            labels: image.labels,
            created_at: image.created_at.and_then(|t| SystemTime::try_from(t).ok()),
        }
    }
}

/// What an import or unpack is doing, for progress displays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// The bytes an import will write in all, known once the archive is read.
    Total {
        /// Sum of all blob sizes.
        bytes: u64,
    },
    /// A blob's write advanced (through the transfer service, an import reports the
    /// archive's upload as one blob keyed by the archive's path).
    Blob {
        /// The blob.
        digest: String,
        /// Bytes written so far.
        written: u64,
        /// Its size.
        size: u64,
    },
    /// An image record was created or updated.
    Image {
        /// Its name.
        name: String,
    },
    /// A layer was unpacked into a snapshot.
    Layer {
        /// The image.
        image: String,
        /// Layers done.
        done: usize,
        /// Layers in all.
        layers: usize,
    },
}

/// How to import an archive.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// The name for images the archive does not name (and for the only image, if set and
    /// the archive names none).
    pub name: Option<String>,
    /// Unpack every imported image into this snapshotter.
    pub unpack: Option<String>,
    /// Where to send progress.
    pub progress: Option<mpsc::UnboundedSender<Progress>>,
    /// Through containerd's transfer service or this client. [`Route::Auto`](crate::Route::Auto)
    /// pulls through the transfer service where it can, and imports in this client.
    pub route: crate::Route,
}

impl ImportOptions {
    /// Imports and unpacks into `snapshotter`.
    pub fn unpack(mut self, snapshotter: &str) -> ImportOptions {
        self.unpack = Some(snapshotter.to_owned());
        self
    }

    /// Goes `route`: through containerd's transfer service or this client.
    pub fn route(mut self, route: crate::Route) -> ImportOptions {
        self.route = route;
        self
    }

    /// Sends progress to `sender`.
    pub fn progress(mut self, sender: mpsc::UnboundedSender<Progress>) -> ImportOptions {
        self.progress = Some(sender);
        self
    }

    pub(crate) fn report(&self, progress: Progress) {
        if let Some(sender) = &self.progress {
            let _ = sender.send(progress);
        }
    }

    /// A progress callback for the write of blob `digest` of `size` bytes, reporting
    /// [`Progress::Blob`].
    pub(crate) fn blob_reporter(&self, digest: &str, size: u64) -> impl Fn(u64) + Send + Sync {
        let sender = self.progress.clone();
        let digest = digest.to_owned();
        move |written: u64| {
            if let Some(sender) = &sender {
                let _ = sender.send(Progress::Blob {
                    digest: digest.clone(),
                    written,
                    size,
                });
            }
        }
    }
}

/// What an image resolves to on this platform: its manifest and config.
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    pub manifest: oci::Manifest,
    pub config: oci::ImageConfig,
}

impl Client {
    /// Images matching `filters` (containerd's filter syntax; empty for all).
    pub async fn list_images(&self, filters: &[&str]) -> Result<Vec<Image>, Error> {
        let request = images::ListImagesRequest {
            filters: filters.iter().map(|f| f.to_string()).collect(),
        };
        let listed = self
            .unary(
                "images.List",
                format!("namespace {}", self.namespace()),
                async { self.images().list(request).await },
            )
            .await?;
        Ok(listed.images.into_iter().map(Image::from_record).collect())
    }

    /// Image `name`.
    pub async fn get_image(&self, name: &str) -> Result<Image, Error> {
        let request = images::GetImageRequest {
            name: name.to_owned(),
        };
        let got = self
            .unary("images.Get", format!("image {name}"), async {
                self.images().get(request).await
            })
            .await?;
        got.image
            .map(Image::from_record)
            .ok_or_else(|| Error::image(name, "containerd answered without the image"))
    }

    /// Creates image `name` pointing at `target`, or points an existing one there.
    pub(crate) async fn put_image(&self, name: &str, target: Descriptor) -> Result<(), Error> {
        let record = images::Image {
            name: name.to_owned(),
            target: Some(target),
            ..Default::default()
        };
        let create = images::CreateImageRequest {
            image: Some(record.clone()),
            source_date_epoch: None,
        };
        match self
            .unary("images.Create", format!("image {name}"), async {
                self.images().create(create).await
            })
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.is_already_exists() => {
                let update = images::UpdateImageRequest {
                    image: Some(record),
                    update_mask: None,
                    source_date_epoch: None,
                };
                self.unary("images.Update", format!("image {name}"), async {
                    self.images().update(update).await
                })
                .await
                .map(|_| ())
            }
            Err(e) => Err(e),
        }
    }

    /// Gives image `source`'s target a second name, `target`.
    pub async fn tag_image(&self, source: &str, target: &str) -> Result<Image, Error> {
        let request = images::GetImageRequest {
            name: source.to_owned(),
        };
        let got = self
            .unary("images.Get", format!("image {source}"), async {
                self.images().get(request).await
            })
            .await?
            .image
            .ok_or_else(|| Error::image(source, "containerd answered without the image"))?;
        self.put_image(target, got.target.unwrap_or_default())
            .await?;
        self.get_image(target).await
    }

    /// Removes image `name` and waits for containerd to collect what only it held (content,
    /// and snapshots unpacked from it that no container uses).
    pub async fn remove_image(&self, name: &str) -> Result<(), Error> {
        let request = images::DeleteImageRequest {
            name: name.to_owned(),
            sync: true,
            target: None,
        };
        self.unary("images.Delete", format!("image {name}"), async {
            self.images().delete(request).await
        })
        .await
        .map(|_| ())
    }

    /// Reads blob `digest` as JSON of type `T`.
    pub(crate) async fn read_json<T: serde::de::DeserializeOwned>(
        &self,
        digest: &str,
        what: &str,
    ) -> Result<T, Error> {
        let data = self.read_blob(digest).await?;
        serde_json::from_slice(&data)
            .map_err(|e| Error::image(digest, format!("{what} is not valid JSON: {e}")))
    }

    /// The manifest and config image `name` has on `platform` (default: this machine's).
    pub(crate) async fn resolve(
        &self,
        name: &str,
        platform: Option<&Platform>,
    ) -> Result<Resolved, Error> {
        let wanted = platform.cloned().unwrap_or_else(Platform::host);
        let image = self.get_image(name).await?;
        let mut media_type = image.media_type.clone();
        let mut digest = image.digest.clone();
        for _ in 0..4 {
            if oci::is_index(&media_type) {
                let index: oci::Index = self.read_json(&digest, "index").await?;
                let chosen = index
                    .manifests
                    .iter()
                    .find(|m| m.platform.as_ref().is_none_or(|p| wanted.matches(p)))
                    .ok_or_else(|| {
                        Error::image(name, format!("no manifest for {wanted} in its index"))
                    })?;
                media_type = chosen.media_type.clone();
                digest = chosen.digest.clone();
            } else if oci::is_manifest(&media_type) {
                let manifest: oci::Manifest = self.read_json(&digest, "manifest").await?;
                let config: oci::ImageConfig =
                    self.read_json(&manifest.config.digest, "config").await?;
                if config.rootfs.diff_ids.len() != manifest.layers.len() {
                    return Err(Error::image(
                        name,
                        format!(
                            "config lists {} layers, manifest {}",
                            config.rootfs.diff_ids.len(),
                            manifest.layers.len()
                        ),
                    ));
                }
                return Ok(Resolved { manifest, config });
            } else {
                return Err(Error::image(
                    name,
                    format!("unsupported media type {media_type:?}"),
                ));
            }
        }
        Err(Error::image(name, "indexes nested too deep"))
    }

    /// The total size of image `name`'s blobs on this platform (manifest, config, layers).
    pub async fn image_size(&self, name: &str) -> Result<u64, Error> {
        let resolved = self.resolve(name, None).await?;
        Ok(resolved.manifest.config.size
            + resolved.manifest.layers.iter().map(|l| l.size).sum::<u64>())
    }
}
