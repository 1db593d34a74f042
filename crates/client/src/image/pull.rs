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

/// How many layers download at once while a pull unpacks, unless told otherwise: with all at
/// once they finish together and unpack one after the other at the end; with two the bottom
/// layers are in (and unpacking) while the upper ones download.
const DOWNLOADS_WHILE_UNPACKING: usize = 2;

/// The media types a pull accepts for manifests and indexes.
const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
    application/vnd.oci.image.manifest.v1+json, \
    application/vnd.docker.distribution.manifest.list.v2+json, \
    application/vnd.docker.distribution.manifest.v2+json";

/// How to pull: what to do with the image ([`ImportOptions`]) and how to reach the registry.
///
/// The scheme follows containerd's rule: plain HTTP when [`PullOptions::plain_http`] is set, or
/// when the host is this machine (`localhost`, `127.*`, `[::1]`) and no CA file is given;
/// HTTPS otherwise, trusting the system's roots and [`PullOptions::ca_file`] (or anything,
/// with [`PullOptions::skip_verify`]) and showing [`PullOptions::client_cert`] when set.
#[derive(Debug, Clone, Default)]
pub struct PullOptions {
    /// Unpacking, naming and progress, as for imports.
    pub import: ImportOptions,
    /// A PEM file of CA certificates to trust besides the system's (`ctr`'s `--tlscacert`).
    pub ca_file: Option<PathBuf>,
    /// A PEM client certificate to show registries that want one (`ctr`'s `--tlscert`);
    /// needs [`PullOptions::client_key`].
    pub client_cert: Option<PathBuf>,
    /// The PEM private key of [`PullOptions::client_cert`] (`ctr`'s `--tlskey`).
    pub client_key: Option<PathBuf>,
    /// Accept any server certificate (`ctr`'s `--skip-verify`): for test registries only.
    pub skip_verify: bool,
    /// Credentials for basic auth, or for the token endpoint of the bearer-token flow.
    pub credentials: Option<Credentials>,
    /// Speak plain HTTP even to a remote host (`ctr`'s `--plain-http`).
    pub plain_http: bool,
    /// The platform whose manifest to take from an index (default: this machine's).
    pub platform: Option<Platform>,
    /// How many layers download at once (`ctr`'s `--max-concurrent-downloads`); 0, the
    /// default, lets the client choose: two while unpacking, all of them otherwise.
    /// Downloads start in manifest order and each layer unpacks as soon as it and the layers
    /// below it are in, so a small number lets the bottom layers unpack while the upper ones
    /// still download (two beat all at once by 1.28x against 1.14x of `ctr`'s time on 1.6:
    /// docs/benchmarks.md).
    pub max_concurrent_downloads: usize,
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

    /// Shows the client certificate `cert` with its private key `key` (both PEM) to
    /// registries that want one (mutual TLS).
    pub fn client_identity(
        mut self,
        cert: impl Into<PathBuf>,
        key: impl Into<PathBuf>,
    ) -> PullOptions {
        self.client_cert = Some(cert.into());
        self.client_key = Some(key.into());
        self
    }

    /// Accepts any server certificate, as `ctr --skip-verify` does.
    pub fn skip_verify(mut self) -> PullOptions {
        self.skip_verify = true;
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

        for blob in std::iter::once(&manifest.config).chain(&manifest.layers) {
            check_digest(text, &blob.digest)?;
        }
        options.report(Progress::Total {
            bytes: manifest.config.size + manifest.layers.iter().map(|b| b.size).sum::<u64>(),
        });

        // The config first: its diff ids name the snapshots the layers unpack into, so each
        // layer can be unpacked as soon as it and the layers below it are in.
        let config_data = self
            .fetch_config(text, &remote, &manifest.config, options)
            .await?;
        let unpack = match &options.unpack {
            Some(snapshotter) => {
                let config: oci::ImageConfig = serde_json::from_slice(&config_data)
                    .map_err(|e| Error::image(text, format!("config is not valid JSON: {e}")))?;
                let diff_ids = config.rootfs.diff_ids;
                if diff_ids.len() != manifest.layers.len() {
                    return Err(Error::image(
                        text,
                        format!(
                            "config lists {} layers, manifest {}",
                            diff_ids.len(),
                            manifest.layers.len()
                        ),
                    ));
                }
                Some((snapshotter.as_str(), diff_ids))
            }
            None => None,
        };

        // Layers fetched (at most max_concurrent_downloads at a time, started in manifest
        // order), each announcing itself when it is in, while the unpacker applies them
        // bottom first.
        let (ready, arrivals): (Vec<_>, Vec<_>) = manifest
            .layers
            .iter()
            .map(|_| tokio::sync::oneshot::channel::<()>())
            .unzip();
        let fetches = manifest.layers.iter().zip(ready).map(|(blob, done)| {
            let remote = Arc::clone(&remote);
            async move {
                self.fetch_blob(&remote, blob, options).await?;
                // The unpacker may have stopped already (it failed): nobody to tell.
                let _ = done.send(());
                Ok::<(), Error>(())
            }
        });
        let fetched = futures_util::StreamExt::buffer_unordered(
            futures_util::stream::iter(fetches),
            match pull.max_concurrent_downloads {
                0 if unpack.is_some() => DOWNLOADS_WHILE_UNPACKING,
                0 => manifest.layers.len().max(1),
                n => n,
            },
        );
        let fetch_all = futures_util::TryStreamExt::try_collect::<Vec<()>>(fetched);
        let top = match &unpack {
            Some((snapshotter, diff_ids)) => {
                let unpacking = self.unpack_as_fetched(
                    text,
                    snapshotter,
                    &manifest.layers,
                    diff_ids,
                    arrivals,
                    options,
                );
                let (_, top) = futures_util::future::try_join(fetch_all, unpacking).await?;
                Some((*snapshotter, top))
            }
            None => {
                fetch_all.await?;
                None
            }
        };

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
        if let Some((snapshotter, top)) = top {
            // The config keeps the unpacked snapshots alive for as long as the image lives.
            self.label_blob(
                &manifest.config.digest,
                HashMap::from([(format!("containerd.io/gc.ref.snapshot.{snapshotter}"), top)]),
            )
            .await?;
        }
        Ok(())
    }
}

impl Client {
    /// Fetches config `blob` (held in memory to read its diff ids) and writes it; one the
    /// content store holds already (an earlier pull or import) is read from there instead.
    async fn fetch_config(
        &self,
        text: &str,
        remote: &Remote,
        blob: &Descriptor,
        options: &ImportOptions,
    ) -> Result<Vec<u8>, Error> {
        if self.content_info(&blob.digest).await?.is_some() {
            match self.read_blob(&blob.digest).await {
                Ok(data) => {
                    options.blob_reporter(&blob.digest, blob.size)(blob.size);
                    return Ok(data);
                }
                // Collected in between: fetch it after all.
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e),
            }
        }
        let (data, _) = remote.get_bytes("blobs", &blob.digest, "*/*").await?;
        let actual = oci::sha256(&data);
        if actual != blob.digest {
            return Err(Error::DigestMismatch {
                expected: blob.digest.clone(),
                actual,
            });
        }
        if data.len() as u64 != blob.size {
            return Err(Error::image(
                text,
                format!(
                    "config {} has {} bytes, its manifest says {}",
                    blob.digest,
                    data.len(),
                    blob.size
                ),
            ));
        }
        self.store_blob(blob, BlobSource::Bytes(data.clone()), options)
            .await?;
        Ok(data)
    }

    /// Fetches layer `blob` into the content store, resuming a download that breaks off.
    async fn fetch_blob(
        &self,
        remote: &Arc<Remote>,
        blob: &Descriptor,
        options: &ImportOptions,
    ) -> Result<(), Error> {
        let open: OpenAt = {
            let remote = Arc::clone(remote);
            let digest = blob.digest.clone();
            Arc::new(move |offset| {
                let remote = Arc::clone(&remote);
                let digest = digest.clone();
                Box::pin(async move { remote.blob_from(&digest, offset).await })
            })
        };
        self.store_blob(blob, BlobSource::Reopen(open), options)
            .await
    }

    /// Writes pulled `blob` from `source` into the content store, reporting its progress.
    async fn store_blob(
        &self,
        blob: &Descriptor,
        source: BlobSource,
        options: &ImportOptions,
    ) -> Result<(), Error> {
        let report = options.blob_reporter(&blob.digest, blob.size);
        self.write_blob(
            &format!("pull-{}", blob.digest),
            &blob.digest,
            blob.size,
            HashMap::new(),
            source,
            &report,
        )
        .await
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
