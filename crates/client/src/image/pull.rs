//! Pulling an image from an OCI registry over plain HTTP (a local registry): the manifest for
//! this platform, then config and layers fetched concurrently straight into the content store,
//! all inside one lease.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use ctrd_api::containerd::types::Descriptor as ApiDescriptor;
use futures_util::TryStreamExt;
use http_body_util::{BodyDataStream, BodyExt, Empty};
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::oci::{self, Descriptor, Index, Manifest};
use super::{Image, ImportOptions, Progress};
use crate::{BlobSource, Client, Error};

/// How long a pull's lease lives if this process dies before removing it.
const LEASE_EXPIRY: Duration = Duration::from_secs(3600);

/// The largest manifest or index a pull reads (the same limit as an archive's JSON files).
const MAX_DOCUMENT: usize = 16 << 20;

/// The media types a pull accepts for manifests and indexes.
const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
    application/vnd.oci.image.manifest.v1+json, \
    application/vnd.docker.distribution.manifest.list.v2+json, \
    application/vnd.docker.distribution.manifest.v2+json";

/// `host/repository:tag` (or `@digest`), split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reference {
    host: String,
    repository: String,
    reference: String,
}

impl Reference {
    pub(crate) fn parse(text: &str) -> Result<Reference, Error> {
        let bad = |why: &str| Error::Registry {
            reference: text.to_owned(),
            reason: why.to_owned(),
        };
        let (host, rest) = text
            .split_once('/')
            .ok_or_else(|| bad("give host/repository:tag"))?;
        let (repository, reference) = match rest.split_once('@') {
            Some((repo, digest)) => (repo, digest),
            None => match rest.rsplit_once(':') {
                Some((repo, tag)) if !tag.contains('/') => (repo, tag),
                _ => (rest, "latest"),
            },
        };
        if repository.is_empty() || host.is_empty() {
            return Err(bad("give host/repository:tag"));
        }
        // Every part becomes part of a URL: nothing that could change its meaning passes.
        if !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
        {
            return Err(bad("the host holds a character a registry host cannot"));
        }
        if repository
            .split('/')
            .any(|part| part.is_empty() || part == "." || part == "..")
            || !repository.bytes().all(|b| {
                b.is_ascii_lowercase()
                    || b.is_ascii_digit()
                    || matches!(b, b'.' | b'_' | b'-' | b'/')
            })
        {
            return Err(bad(
                "a repository is lowercase letters, digits, '.', '_', '-' and '/' between parts",
            ));
        }
        let tag_ok = reference.len() <= 128
            && !reference.starts_with(['.', '-'])
            && reference
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        if !tag_ok && oci::digest_problem(reference).is_some() {
            return Err(bad(
                "a tag is up to 128 letters, digits, '_', '.' and '-' (or give @sha256:<64 hex>)",
            ));
        }
        Ok(Reference {
            host: host.to_owned(),
            repository: repository.to_owned(),
            reference: reference.to_owned(),
        })
    }

    pub(crate) fn url(&self, kind: &str, what: &str) -> String {
        format!("http://{}/v2/{}/{kind}/{what}", self.host, self.repository)
    }
}

type Http = HttpClient<HttpConnector, Empty<Bytes>>;

/// GETs `url`; a status other than 200 is an error naming the URL and the status.
async fn get(
    http: &Http,
    reference: &str,
    url: &str,
    accept: &str,
) -> Result<hyper::Response<hyper::body::Incoming>, Error> {
    let request = hyper::Request::get(url)
        .header("Accept", accept)
        .body(Empty::new())
        .map_err(|e| Error::Registry {
            reference: reference.to_owned(),
            reason: format!("{url}: {e}"),
        })?;
    let response = http.request(request).await.map_err(|e| Error::Registry {
        reference: reference.to_owned(),
        reason: format!("GET {url}: {e}"),
    })?;
    if response.status() != hyper::StatusCode::OK {
        return Err(Error::Registry {
            reference: reference.to_owned(),
            reason: format!("GET {url}: {}", response.status()),
        });
    }
    Ok(response)
}

async fn get_bytes(http: &Http, reference: &str, url: &str) -> Result<Vec<u8>, Error> {
    let response = get(http, reference, url, ACCEPT).await?;
    read_document(reference, url, response).await
}

/// The body of a manifest or index response, refused past [`MAX_DOCUMENT`] bytes (it is held
/// in memory).
async fn read_document(
    reference: &str,
    what: &str,
    response: hyper::Response<hyper::body::Incoming>,
) -> Result<Vec<u8>, Error> {
    let body = http_body_util::Limited::new(response.into_body(), MAX_DOCUMENT);
    let bytes = body.collect().await.map_err(|e| Error::Registry {
        reference: reference.to_owned(),
        reason: format!("reading {what}: {e} (at most {MAX_DOCUMENT} bytes are accepted)"),
    })?;
    Ok(bytes.to_bytes().to_vec())
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

impl Client {
    /// Pulls `reference` (`host:port/repository:tag`) from a registry over plain HTTP, picking
    /// this platform's manifest from an index, and creates the image record; with
    /// [`ImportOptions::unpack`] also unpacks it. Layers are fetched concurrently.
    pub async fn pull(&self, reference: &str, options: ImportOptions) -> Result<Image, Error> {
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

    async fn pull_in_lease(&self, text: &str, options: &ImportOptions) -> Result<(), Error> {
        let reference = Reference::parse(text)?;
        let http: Http = HttpClient::builder(TokioExecutor::new()).build_http();
        let top = get(
            &http,
            text,
            &reference.url("manifests", &reference.reference),
            ACCEPT,
        )
        .await?;
        let media_type = top
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let top_data = read_document(text, "the manifest or index", top).await?;
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
            let host = oci::Platform::host();
            let (position, chosen) = oci::choose_manifest(&index, &host).ok_or_else(|| {
                Error::image(
                    text,
                    format!(
                        "no manifest for {}/{} in its index",
                        host.os, host.architecture
                    ),
                )
            })?;
            check_digest(text, &chosen.digest)?;
            let data = get_bytes(&http, text, &reference.url("manifests", &chosen.digest)).await?;
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
            let http = http.clone();
            let url = reference.url("blobs", &blob.digest);
            async move {
                let response = get(&http, text, &url, "*/*").await?;
                let stream =
                    BodyDataStream::new(response.into_body()).map_err(std::io::Error::other);
                let reader = tokio_util::io::StreamReader::new(stream);
                let sender = options.progress.clone();
                let digest = blob.digest.clone();
                let size = blob.size;
                let report = move |written: u64| {
                    if let Some(sender) = &sender {
                        let _ = sender.send(Progress::Blob {
                            digest: digest.clone(),
                            written,
                            size,
                        });
                    }
                };
                self.write_blob(
                    &format!("pull-{}", blob.digest),
                    &blob.digest,
                    blob.size,
                    HashMap::new(),
                    BlobSource::Stream(Box::new(reader)),
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
            && let Err(e) = self.unpack_reporting(text, snapshotter, options).await
        {
            let _ = self.remove_image(text).await;
            return Err(e);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::Reference;

    #[test]
    fn references_split_into_host_repository_and_tag() {
        let r = Reference::parse("127.0.0.1:5000/library/busybox:1.36").expect("parse");
        assert_eq!(r.host, "127.0.0.1:5000");
        assert_eq!(r.repository, "library/busybox");
        assert_eq!(r.reference, "1.36");
        let r = Reference::parse("localhost:5000/app").expect("parse");
        assert_eq!(r.reference, "latest");
        assert!(Reference::parse("busybox").is_err());
    }

    #[test]
    fn references_that_would_change_the_url_are_refused() {
        let digest = format!("sha256:{}", "a".repeat(64));
        Reference::parse(&format!("127.0.0.1:5000/library/busybox@{digest}")).expect("digest");
        for bad in [
            "127.0.0.1:5000/../../v2/x:latest",
            "127.0.0.1:5000/a//b:latest",
            "127.0.0.1:5000/Upper:latest",
            "127.0.0.1:5000/a:tag?x=y",
            "127.0.0.1:5000/a:tag#frag",
            "127.0.0.1:5000/a@sha256:..%2F",
            "evil.invalid/x@y/a:1",
            "host with space/a:1",
            "127.0.0.1:5000/a:-tag",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad}");
        }
        let long_tag = format!("127.0.0.1:5000/a:{}", "t".repeat(129));
        assert!(Reference::parse(&long_tag).is_err());
    }
}
