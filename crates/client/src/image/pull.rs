//! Pulling an image from an OCI registry: the manifest for the wanted platform, then config
//! and layers fetched concurrently straight into the content store, all inside one lease. A
//! blob whose download breaks off resumes with a range request from what containerd holds.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ctrd_api::containerd::types::Descriptor as ApiDescriptor;

use super::oci::{self, Descriptor, Index, Manifest, Platform};
use super::registry::{Credentials, Reference, Remote};
use super::{Image, ImportOptions, Progress};
use crate::content::OpenAt;
use crate::{BlobSource, Client, Error};

/// How long a pull's lease lives if this process dies before removing it.
const LEASE_EXPIRY: Duration = Duration::from_secs(3600);

/// The media types a pull accepts for manifests and indexes.
const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
    application/vnd.oci.image.manifest.v1+json, \
    application/vnd.docker.distribution.manifest.list.v2+json, \
    application/vnd.docker.distribution.manifest.v2+json";

/// How to pull: what to do with the image ([`ImportOptions`]) and how to reach the registry.
///
/// The scheme follows containerd's rule: plain HTTP when [`PullOptions::plain_http`] is set, or
/// when the host is this machine (`localhost`, `127.*`, `[::1]`) and no CA file is given;
/// HTTPS otherwise, trusting the system's roots and [`PullOptions::ca_file`].
#[derive(Debug, Clone, Default)]
pub struct PullOptions {
    /// Unpacking, naming and progress, as for imports.
    pub import: ImportOptions,
    /// A PEM file of CA certificates to trust besides the system's (`ctr`'s `--tlscacert`).
    pub ca_file: Option<PathBuf>,
    /// Credentials for basic auth, or for the token endpoint of the bearer-token flow.
    pub credentials: Option<Credentials>,
    /// Speak plain HTTP even to a remote host (`ctr`'s `--plain-http`).
    pub plain_http: bool,
    /// The platform whose manifest to take from an index (default: this machine's).
    pub platform: Option<Platform>,
}

impl From<ImportOptions> for PullOptions {
    fn from(import: ImportOptions) -> PullOptions {
        PullOptions {
            import,
            ..PullOptions::default()
        }
    }
}

impl PullOptions {
    /// Trusts the CA certificates in `path` (PEM).
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> PullOptions {
        self.ca_file = Some(path.into());
        self
    }

    /// Authenticates as `credentials`.
    pub fn credentials(mut self, credentials: Credentials) -> PullOptions {
        self.credentials = Some(credentials);
        self
    }

    /// Speaks plain HTTP.
    pub fn plain_http(mut self) -> PullOptions {
        self.plain_http = true;
        self
    }

    /// Takes `platform`'s manifest from an index.
    pub fn platform(mut self, platform: Platform) -> PullOptions {
        self.platform = Some(platform);
        self
    }
}

impl Client {
    /// Pulls `reference` (`host[:port]/repository:tag` or `...@digest`) from a registry,
    /// picking the wanted platform's manifest from an index, and creates the image record;
    /// with [`ImportOptions::unpack`] also unpacks it. Layers are fetched concurrently; a
    /// download that breaks off resumes. Pass [`ImportOptions`] for an open registry, or
    /// [`PullOptions`] for HTTPS with a CA file, credentials or another platform. On failure
    /// nothing is left behind: the lease holding the partial content is removed.
    pub async fn pull(
        &self,
        reference: &str,
        options: impl Into<PullOptions>,
    ) -> Result<Image, Error> {
        let options = options.into();
        if Client::wants_transfer(reference, &options)? {
            if self.transfer_pull(reference, &options).await? {
                return self.get_image(reference).await;
            }
            if options.import.route == crate::Route::Transfer {
                return Err(Error::Registry {
                    reference: reference.to_owned(),
                    reason: "this containerd has no transfer service (it came with 2.0)".into(),
                });
            }
        }
        let lease = self.lease(LEASE_EXPIRY).await?;
        let result = lease.client().pull_in_lease(reference, &options).await;
        let result = match result {
            Ok(()) => self.get_image(reference).await,
            Err(e) => Err(e),
        };
        let released = lease.release().await;
        let image = result?;
        released?;
        Ok(image)
    }

    async fn pull_in_lease(&self, text: &str, pull: &PullOptions) -> Result<(), Error> {
        let options = &pull.import;
        let reference = Reference::parse(text)?;
        let remote = Remote::new(text, &reference, pull)?;
        let (top_data, media_type) = remote
            .get_bytes("manifests", &reference.reference, ACCEPT)
            .await?;
        let top_desc = Descriptor {
            media_type: media_type.clone(),
            digest: oci::sha256(&top_data),
            size: top_data.len() as u64,
            platform: None,
            annotations: HashMap::new(),
        };

        // An index: this platform's manifest.
        let (manifest_desc, manifest_data, index) = if oci::is_index(&media_type) {
            let index: Index = serde_json::from_slice(&top_data)
                .map_err(|e| Error::image(text, format!("index is not valid JSON: {e}")))?;
            let wanted = pull.platform.clone().unwrap_or_else(Platform::host);
            let (position, chosen) = index
                .manifests
                .iter()
                .enumerate()
                .find(|(_, m)| m.platform.as_ref().is_none_or(|p| wanted.matches(p)))
                .ok_or_else(|| {
                    Error::image(text, format!("no manifest for {wanted} in its index"))
                })?;
            check_digest(text, &chosen.digest)?;
            let (data, _) = remote
                .get_bytes("manifests", &chosen.digest, ACCEPT)
                .await?;
            let actual = oci::sha256(&data);
            if actual != chosen.digest {
                return Err(Error::DigestMismatch {
                    expected: chosen.digest.clone(),
                    actual,
                });
            }
            (chosen.clone(), data, Some((position, top_data)))
        } else if oci::is_manifest(&media_type) {
            (top_desc.clone(), top_data, None)
        } else {
            return Err(Error::image(
                text,
                format!("the registry answered with media type {media_type:?}"),
            ));
        };
        let manifest: Manifest = serde_json::from_slice(&manifest_data)
            .map_err(|e| Error::image(text, format!("manifest is not valid JSON: {e}")))?;

        let mut blobs = vec![manifest.config.clone()];
        blobs.extend(manifest.layers.iter().cloned());
        for blob in &blobs {
            check_digest(text, &blob.digest)?;
        }
        options.report(Progress::Total {
            bytes: blobs.iter().map(|b| b.size).sum(),
        });
        let fetches = blobs.iter().map(|blob| {
            let open: OpenAt = {
                let remote = Arc::clone(&remote);
                let digest = blob.digest.clone();
                Arc::new(move |offset| {
                    let remote = Arc::clone(&remote);
                    let digest = digest.clone();
                    Box::pin(async move { remote.blob_from(&digest, offset).await })
                })
            };
            async move {
                let report = options.blob_reporter(&blob.digest, blob.size);
                self.write_blob(
                    &format!("pull-{}", blob.digest),
                    &blob.digest,
                    blob.size,
                    HashMap::new(),
                    BlobSource::Reopen(open),
                    &report,
                )
                .await
            }
        });
        futures_util::future::try_join_all(fetches).await?;

        let mut labels = HashMap::from([(
            "containerd.io/gc.ref.content.config".to_owned(),
            manifest.config.digest.clone(),
        )]);
        for (i, layer) in manifest.layers.iter().enumerate() {
            labels.insert(
                format!("containerd.io/gc.ref.content.l.{i}"),
                layer.digest.clone(),
            );
        }
        self.write_blob(
            &format!("pull-{}", manifest_desc.digest),
            &manifest_desc.digest,
            manifest_desc.size,
            labels,
            BlobSource::Bytes(manifest_data),
            &|_| {},
        )
        .await?;
        if let Some((position, data)) = index {
            let labels = HashMap::from([(
                format!("containerd.io/gc.ref.content.m.{position}"),
                manifest_desc.digest.clone(),
            )]);
            self.write_blob(
                &format!("pull-{}", top_desc.digest),
                &top_desc.digest,
                top_desc.size,
                labels,
                BlobSource::Bytes(data),
                &|_| {},
            )
            .await?;
        }
        let target = ApiDescriptor {
            media_type: top_desc.media_type.clone(),
            digest: top_desc.digest.clone(),
            size: i64::try_from(top_desc.size).unwrap_or_default(),
            annotations: HashMap::new(),
        };
        self.put_image(text, target).await?;
        options.report(Progress::Image {
            name: text.to_owned(),
        });
        if let Some(snapshotter) = &options.unpack
            && let Err(e) = self
                .unpack_reporting(text, snapshotter, options, pull.platform.as_ref())
                .await
        {
            let _ = self.remove_image(text).await;
            return Err(e);
        }
        Ok(())
    }
}

/// Refuses a digest that could not be fetched safely (it becomes part of a URL).
fn check_digest(reference: &str, digest: &str) -> Result<(), Error> {
    match oci::digest_problem(digest) {
        None => Ok(()),
        Some(reason) => Err(Error::image(
            reference,
            format!(
                "digest {:?} is refused: {reason}",
                digest.escape_debug().to_string()
            ),
        )),
    }
}
