//! Importing image archives: an OCI image layout or a `docker save` archive, as a tar file.
//!
//! The archive is read in place: its table of entries first, then each blob straight from its
//! range of the file into the content store, all inside one lease, so a failure part way leaves
//! nothing behind.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ctrd_api::containerd::types::Descriptor as ApiDescriptor;
use futures_util::StreamExt;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::oci::{self, Descriptor, Index, Manifest};
use super::{Image, ImportOptions, Progress};
use crate::{BlobSource, Client, Error};

/// JSON files in an archive larger than this are refused (they would be read into memory).
const MAX_JSON: u64 = 16 << 20;

/// How long an import's lease lives if this process dies before removing it.
const LEASE_EXPIRY: Duration = Duration::from_secs(3600);

/// How many of an archive's layers are written at once.
const IMPORT_CONCURRENCY: usize = 4;

/// Where each regular file of the archive lies.
#[derive(Debug)]
struct Entries {
    path: PathBuf,
    files: HashMap<String, (u64, u64)>,
}

impl Entries {
    fn scan(path: &Path) -> Result<Entries, Error> {
        let bad = |reason: String| Error::Archive {
            path: path.to_path_buf(),
            reason,
        };
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        let length = file.metadata().map_err(|e| Error::io(path, e))?.len();
        let mut archive = tar::Archive::new(file);
        let mut files = HashMap::new();
        let entries = archive
            .entries_with_seek()
            .map_err(|e| bad(format!("not a tar archive: {e}")))?;
        for entry in entries {
            let entry = entry.map_err(|e| bad(format!("not a readable tar archive: {e}")))?;
            if !entry.header().entry_type().is_file() {
                continue;
            }
            let name = entry
                .path()
                .map_err(|e| bad(format!("entry with a bad name: {e}")))?
                .to_string_lossy()
                .trim_start_matches("./")
                .to_owned();
            let offset = entry.raw_file_position();
            let size = entry.size();
            if offset + size > length {
                return Err(bad(format!(
                    "truncated: {name} needs {size} bytes at {offset}, the file has {length}"
                )));
            }
            files.insert(name, (offset, size));
        }
        if files.is_empty() {
            return Err(bad("not a tar archive, or an empty one".into()));
        }
        Ok(Entries {
            path: path.to_path_buf(),
            files,
        })
    }

    fn bad(&self, reason: impl Into<String>) -> Error {
        Error::Archive {
            path: self.path.clone(),
            reason: reason.into(),
        }
    }

    fn find(&self, name: &str) -> Result<(u64, u64), Error> {
        self.files
            .get(name)
            .copied()
            .ok_or_else(|| self.bad(format!("{name} is missing")))
    }

    fn read(&self, name: &str) -> Result<Vec<u8>, Error> {
        let (offset, size) = self.find(name)?;
        if size > MAX_JSON {
            return Err(self.bad(format!("{name} is {size} bytes, too large for JSON")));
        }
        let mut file = std::fs::File::open(&self.path).map_err(|e| Error::io(&self.path, e))?;
        file.seek(SeekFrom::Start(offset))
            .map_err(|e| Error::io(&self.path, e))?;
        let mut data = vec![0; usize::try_from(size).unwrap_or_default()];
        file.read_exact(&mut data)
            .map_err(|e| Error::io(&self.path, e))?;
        Ok(data)
    }

    fn json<T: serde::de::DeserializeOwned>(&self, name: &str) -> Result<T, Error> {
        serde_json::from_slice(&self.read(name)?)
            .map_err(|e| self.bad(format!("{name} is not what it should be: {e}")))
    }

    fn blob_name(digest: &str) -> String {
        format!("blobs/{}", digest.replacen(':', "/", 1))
    }

    /// Digest and first bytes of the file `name`, hashed from the archive.
    fn hash(&self, name: &str) -> Result<(String, u64, [u8; 2]), Error> {
        let (offset, size) = self.find(name)?;
        let mut file = std::fs::File::open(&self.path).map_err(|e| Error::io(&self.path, e))?;
        file.seek(SeekFrom::Start(offset))
            .map_err(|e| Error::io(&self.path, e))?;
        let mut reader = file.take(size);
        let mut hasher = Sha256::new();
        let mut buf = vec![0; 1 << 20];
        let mut magic = [0u8; 2];
        let mut seen = 0u64;
        loop {
            let n = reader
                .read(&mut buf)
                .map_err(|e| Error::io(&self.path, e))?;
            if n == 0 {
                break;
            }
            if seen == 0 && n >= 2 {
                magic = [buf[0], buf[1]];
            }
            seen += n as u64;
            hasher.update(&buf[..n]);
        }
        Ok((oci::hex_digest(hasher.finalize().as_slice()), size, magic))
    }
}

/// One blob to write: where it is, and the labels its commit carries.
#[derive(Debug)]
struct Blob {
    digest: String,
    size: u64,
    source: BlobSource,
    labels: HashMap<String, String>,
}

/// An image the archive names, with its target.
#[derive(Debug)]
struct Named {
    name: String,
    target: Descriptor,
}

impl Client {
    /// Imports the image archive at `path` (an OCI image layout or a `docker save` archive,
    /// as tar), creating an image record for each image it names; with
    /// [`ImportOptions::unpack`] also unpacks them. Works on every containerd generation: it
    /// uses only the content, images, snapshots and diff services.
    ///
    /// With [`Route::Transfer`](crate::Route::Transfer) the archive goes to containerd's
    /// transfer service instead (containerd 2.x; an error on 1.x), which names the images by
    /// containerd's rules: names in the archive are kept, bare tags go after
    /// [`ImportOptions::name`] (`import-DATE` without one). [`Route::Auto`](crate::Route::Auto)
    /// imports in this client, which is faster (it writes the layers concurrently).
    pub async fn import(
        &self,
        path: impl AsRef<Path>,
        options: ImportOptions,
    ) -> Result<Vec<Image>, Error> {
        let path = path.as_ref().to_path_buf();
        if options.route == crate::Route::Transfer {
            return self.transfer_import(&path, &options).await;
        }
        let lease = self.lease(LEASE_EXPIRY).await?;
        let leased = lease.client();
        let result = leased.import_in_lease(&path, &options).await;
        self.images_then_release(result, lease).await
    }

    /// The images an import in `lease` saved (`result`: their names), read back, with the
    /// lease released whatever happened: on success the images hold what was written, on
    /// failure nothing is left.
    pub(crate) async fn images_then_release(
        &self,
        result: Result<Vec<String>, Error>,
        lease: crate::Lease,
    ) -> Result<Vec<Image>, Error> {
        let result = match result {
            Ok(names) => {
                let mut images = Vec::new();
                for name in &names {
                    images.push(self.get_image(name).await?);
                }
                Ok(images)
            }
            Err(e) => Err(e),
        };
        let released = lease.release().await;
        let images = result?;
        released?;
        Ok(images)
    }

    async fn import_in_lease(
        &self,
        path: &Path,
        options: &ImportOptions,
    ) -> Result<Vec<String>, Error> {
        let scan_path = path.to_path_buf();
        let entries = tokio::task::spawn_blocking(move || Entries::scan(&scan_path))
            .await
            .map_err(|e| Error::io(path, std::io::Error::other(e.to_string())))??;
        let entries = Arc::new(entries);
        let plan_entries = Arc::clone(&entries);
        let default_name = options.name.clone();
        let (blobs, named) =
            tokio::task::spawn_blocking(move || plan(&plan_entries, default_name.as_deref()))
                .await
                .map_err(|e| Error::io(path, std::io::Error::other(e.to_string())))??;

        options.report(Progress::Total {
            bytes: blobs.iter().map(|b| b.size).sum(),
        });
        // Layers and configs (no labels: they refer to nothing) go in concurrently; then the
        // manifests and indexes, in the plan's order, each after what its labels keep.
        let (leaves, labelled): (Vec<Blob>, Vec<Blob>) =
            blobs.into_iter().partition(|b| b.labels.is_empty());
        // Every write started runs to its end (none is dropped half-sent); the first failure
        // is the import's.
        let leaves = leaves
            .into_iter()
            .map(|blob| self.import_blob(blob, options));
        let written: Vec<Result<(), Error>> = futures_util::stream::iter(leaves)
            .buffer_unordered(IMPORT_CONCURRENCY)
            .collect()
            .await;
        written.into_iter().collect::<Result<Vec<()>, Error>>()?;
        for blob in labelled {
            self.import_blob(blob, options).await?;
        }

        let mut created: Vec<String> = Vec::new();
        for image in &named {
            let target = ApiDescriptor {
                media_type: image.target.media_type.clone(),
                digest: image.target.digest.clone(),
                size: i64::try_from(image.target.size).unwrap_or_default(),
                annotations: HashMap::new(),
            };
            if let Err(e) = self.put_image(&image.name, target).await {
                for name in &created {
                    let _ = self.remove_image(name).await;
                }
                return Err(e);
            }
            created.push(image.name.clone());
            options.report(Progress::Image {
                name: image.name.clone(),
            });
        }
        if let Some(snapshotter) = &options.unpack {
            for name in &created {
                if let Err(e) = self
                    .unpack_reporting(name, snapshotter, options, None)
                    .await
                {
                    for name in &created {
                        let _ = self.remove_image(name).await;
                    }
                    return Err(e);
                }
            }
        }
        Ok(created)
    }
}

impl Client {
    /// Writes one blob of an archive into the content store, reporting its progress.
    async fn import_blob(&self, blob: Blob, options: &ImportOptions) -> Result<(), Error> {
        let reference = format!("import-{}", blob.digest);
        let report = options.blob_reporter(&blob.digest, blob.size);
        self.write_blob(
            &reference,
            &blob.digest,
            blob.size,
            blob.labels,
            blob.source,
            &report,
        )
        .await
    }
}

/// Scans the archive at `path` and plans its import; returns how many blobs it would write.
pub(crate) fn plan_file(path: &Path, default_name: Option<&str>) -> Result<usize, Error> {
    let entries = Entries::scan(path)?;
    Ok(plan(&entries, default_name)?.0.len())
}

/// Works out every blob to write (leaves before the manifests and indexes that label them)
/// and every image the archive names.
fn plan(entries: &Entries, default_name: Option<&str>) -> Result<(Vec<Blob>, Vec<Named>), Error> {
    if entries.files.contains_key("index.json") {
        plan_oci(entries, default_name)
    } else if entries.files.contains_key("manifest.json") {
        plan_docker(entries)
    } else {
        Err(entries.bad(
            "neither an OCI image layout (no index.json) nor a docker archive (no manifest.json)",
        ))
    }
}

fn plan_oci(
    entries: &Entries,
    default_name: Option<&str>,
) -> Result<(Vec<Blob>, Vec<Named>), Error> {
    let index: Index = entries.json("index.json")?;
    let mut blobs = Vec::new();
    let mut named = Vec::new();
    for descriptor in &index.manifests {
        walk(entries, descriptor, &mut blobs, 0)?;
        let annotated = descriptor
            .annotations
            .get("io.containerd.image.name")
            .cloned()
            .or_else(|| {
                descriptor
                    .annotations
                    .get("org.opencontainers.image.ref.name")
                    .filter(|r| r.contains('/') || r.contains(':'))
                    .cloned()
            });
        let name = match (annotated, default_name) {
            (Some(name), _) => name,
            (None, Some(name)) if index.manifests.len() == 1 => oci::normalize_name(name),
            (None, Some(base)) => match descriptor
                .annotations
                .get("org.opencontainers.image.ref.name")
            {
                Some(tag) => oci::normalize_name(&format!("{base}:{tag}")),
                None => continue,
            },
            (None, None) => {
                return Err(entries.bad(format!(
                    "image {} has no name in index.json; give one",
                    descriptor.digest
                )));
            }
        };
        named.push(Named {
            name,
            target: descriptor.clone(),
        });
    }
    if named.is_empty() {
        return Err(entries.bad("index.json lists no image"));
    }
    let mut seen = std::collections::HashSet::new();
    blobs.retain(|b| seen.insert(b.digest.clone()));
    Ok((blobs, named))
}

/// Adds `descriptor`'s blob and everything below it to `blobs`, children first.
fn walk(
    entries: &Entries,
    descriptor: &Descriptor,
    blobs: &mut Vec<Blob>,
    depth: usize,
) -> Result<(), Error> {
    if depth > 4 {
        return Err(entries.bad("indexes nested too deep"));
    }
    if let Some(reason) = oci::digest_problem(&descriptor.digest) {
        return Err(entries.bad(format!(
            "digest {:?} is refused: {reason}",
            descriptor.digest.escape_debug().to_string()
        )));
    }
    // A blob named twice (by several manifests, or many times by one index) is planned once:
    // walking it again would repeat its reads and could multiply without bound.
    if blobs.iter().any(|b| b.digest == descriptor.digest) {
        return Ok(());
    }
    let name = Entries::blob_name(&descriptor.digest);
    let (offset, size) = entries.find(&name)?;
    if size != descriptor.size {
        return Err(Error::SizeMismatch {
            digest: descriptor.digest.clone(),
            expected: descriptor.size,
            actual: size,
        });
    }
    let mut labels = HashMap::new();
    if oci::is_index(&descriptor.media_type) || oci::is_manifest(&descriptor.media_type) {
        let data = entries.read(&name)?;
        let actual = oci::sha256(&data);
        if actual != descriptor.digest {
            return Err(Error::DigestMismatch {
                expected: descriptor.digest.clone(),
                actual,
            });
        }
        if oci::is_index(&descriptor.media_type) {
            let index: Index = serde_json::from_slice(&data)
                .map_err(|e| entries.bad(format!("{name} is not an index: {e}")))?;
            for (i, child) in index.manifests.iter().enumerate() {
                // Multi-platform archives often carry only some platforms.
                if entries
                    .files
                    .contains_key(&Entries::blob_name(&child.digest))
                {
                    walk(entries, child, blobs, depth + 1)?;
                    labels.insert(
                        format!("containerd.io/gc.ref.content.m.{i}"),
                        child.digest.clone(),
                    );
                }
            }
        } else {
            let manifest: Manifest = serde_json::from_slice(&data)
                .map_err(|e| entries.bad(format!("{name} is not a manifest: {e}")))?;
            walk(entries, &manifest.config, blobs, depth + 1)?;
            labels.insert(
                "containerd.io/gc.ref.content.config".into(),
                manifest.config.digest.clone(),
            );
            for (i, layer) in manifest.layers.iter().enumerate() {
                walk(entries, layer, blobs, depth + 1)?;
                labels.insert(
                    format!("containerd.io/gc.ref.content.l.{i}"),
                    layer.digest.clone(),
                );
            }
        }
    }
    blobs.push(Blob {
        digest: descriptor.digest.clone(),
        size,
        source: BlobSource::File {
            path: entries.path.clone(),
            offset,
        },
        labels,
    });
    Ok(())
}

/// One image of a `docker save` archive's `manifest.json`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

fn plan_docker(entries: &Entries) -> Result<(Vec<Blob>, Vec<Named>), Error> {
    let listed: Vec<DockerEntry> = entries.json("manifest.json")?;
    let mut blobs: Vec<Blob> = Vec::new();
    let mut named = Vec::new();
    for image in listed {
        let config_data = entries.read(&image.config)?;
        let config = Descriptor {
            media_type: oci::DOCKER_CONFIG.into(),
            digest: oci::sha256(&config_data),
            size: config_data.len() as u64,
            platform: None,
            annotations: HashMap::new(),
        };
        let mut labels = HashMap::from([(
            "containerd.io/gc.ref.content.config".to_owned(),
            config.digest.clone(),
        )]);
        blobs.push(Blob {
            digest: config.digest.clone(),
            size: config.size,
            source: BlobSource::Bytes(config_data),
            labels: HashMap::new(),
        });
        let mut layers = Vec::new();
        for (i, layer) in image.layers.iter().enumerate() {
            let (digest, size, magic) = entries.hash(layer)?;
            let (offset, _) = entries.find(layer)?;
            let media_type = if magic == [0x1f, 0x8b] {
                oci::DOCKER_LAYER_GZIP
            } else {
                oci::DOCKER_LAYER
            };
            labels.insert(
                format!("containerd.io/gc.ref.content.l.{i}"),
                digest.clone(),
            );
            blobs.push(Blob {
                digest: digest.clone(),
                size,
                source: BlobSource::File {
                    path: entries.path.clone(),
                    offset,
                },
                labels: HashMap::new(),
            });
            layers.push(Descriptor {
                media_type: media_type.into(),
                digest,
                size,
                platform: None,
                annotations: HashMap::new(),
            });
        }
        let manifest = Manifest {
            schema_version: 2,
            media_type: oci::DOCKER_MANIFEST.into(),
            config,
            layers,
        };
        let data = serde_json::to_vec(&manifest)
            .map_err(|e| entries.bad(format!("encoding a manifest: {e}")))?;
        let target = Descriptor {
            media_type: oci::DOCKER_MANIFEST.into(),
            digest: oci::sha256(&data),
            size: data.len() as u64,
            platform: None,
            annotations: HashMap::new(),
        };
        blobs.push(Blob {
            digest: target.digest.clone(),
            size: target.size,
            source: BlobSource::Bytes(data),
            labels,
        });
        for tag in image.repo_tags.unwrap_or_default() {
            named.push(Named {
                name: oci::normalize_name(&tag),
                target: target.clone(),
            });
        }
    }
    if named.is_empty() {
        return Err(entries.bad("manifest.json names no image (no RepoTags)"));
    }
    let mut seen = std::collections::HashSet::new();
    blobs.retain(|b| seen.insert(b.digest.clone()));
    Ok((blobs, named))
}
