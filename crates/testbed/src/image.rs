//! Image archives (OCI layout and `docker save`) built offline from the busybox rootfs.

use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::{Error, Rootfs};

/// An image archive on disk, removed when dropped.
#[derive(Debug)]
pub struct ImageArchive {
    dir: tempfile::TempDir,
    name: String,
    manifests: Vec<(String, String)>,
}

impl ImageArchive {
    /// A single-layer busybox image named `name` (such as
    /// `docker.io/library/ctrd-busybox:latest`), in OCI layout, as a tar file.
    pub fn busybox(name: &str) -> Result<ImageArchive, Error> {
        ImageArchive::layered(name, &[])
    }

    /// A busybox image with `layers` stacked on the busybox layer, bottom first: each layer
    /// is a list of changes, `(path, Some(content))` writing a file (and its folders) and
    /// `(path, None)` deleting what a lower layer holds at `path` (an OCI whiteout).
    pub fn layered(
        name: &str,
        layers: &[Vec<(String, Option<String>)>],
    ) -> Result<ImageArchive, Error> {
        let config = serde_json::json!({ "Cmd": ["/bin/sh"], "Env": ["PATH=/bin"] });
        ImageArchive::build(name, layers, config)
    }

    /// A pause image for pods' sandbox containers, named `name` (such as
    /// [`PAUSE_IMAGE`](crate::cri::PAUSE_IMAGE)): busybox's shell as PID 1, sleeping, reaping
    /// children and leaving with status 0 on SIGTERM or SIGINT, as Kubernetes' `pause` does.
    pub fn pause(name: &str) -> Result<ImageArchive, Error> {
        let config = serde_json::json!({
            "Entrypoint": [
                "/bin/sh", "-c",
                "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done",
            ],
            "Env": ["PATH=/bin"],
        });
        ImageArchive::build(name, &[], config)
    }

    fn build(
        name: &str,
        layers: &[Vec<(String, Option<String>)>],
        image_config: serde_json::Value,
    ) -> Result<ImageArchive, Error> {
        let dir = tempfile::Builder::new()
            .prefix("ctrd-image-")
            .tempdir_in("/tmp")
            .map_err(|e| Error::io("/tmp", e))?;
        let layout = dir.path().join("layout");
        let blobs = layout.join("blobs/sha256");
        std::fs::create_dir_all(&blobs).map_err(|e| Error::io(&blobs, e))?;

        let rootfs = Rootfs::busybox()?;
        let mut digests = vec![layer_blob(&blobs, rootfs.path(), dir.path())?];
        for (i, changes) in layers.iter().enumerate() {
            let content = dir.path().join(format!("layer-{i}"));
            std::fs::create_dir_all(&content).map_err(|e| Error::io(&content, e))?;
            for (path, data) in changes {
                let relative = Path::new(path.trim_start_matches('/'));
                let target = match data {
                    Some(_) => content.join(relative),
                    None => {
                        let file = relative
                            .file_name()
                            .map(|n| format!(".wh.{}", n.to_string_lossy()))
                            .unwrap_or_default();
                        content.join(relative.with_file_name(file))
                    }
                };
                if let Some(parent) = target.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
                }
                write(&target, data.as_deref().unwrap_or("").as_bytes())?;
            }
            digests.push(layer_blob(&blobs, &content, dir.path())?);
        }

        let (os, architecture) = ("linux", oci_arch());
        let diff_ids: Vec<&str> = digests.iter().map(|d| d.0.as_str()).collect();
        let config = serde_json::json!({
            "architecture": architecture,
            "os": os,
            "config": image_config,
            "rootfs": { "type": "layers", "diff_ids": diff_ids },
        });
        let config = blob(&blobs, config.to_string().as_bytes())?;
        let layer_descriptors: Vec<serde_json::Value> = digests
            .iter()
            .map(|(digest, size)| {
                serde_json::json!({
                    "mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": digest, "size": size,
                })
            })
            .collect();
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config.0, "size": config.1,
            },
            "layers": layer_descriptors,
        });
        let manifest = blob(&blobs, manifest.to_string().as_bytes())?;
        let tag = name.rsplit_once(':').map_or("latest", |(_, t)| t);
        let index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [{
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": manifest.0, "size": manifest.1,
                "platform": { "architecture": architecture, "os": os },
                "annotations": {
                    "io.containerd.image.name": name,
                    "org.opencontainers.image.ref.name": tag,
                },
            }],
        });
        write(&layout.join("index.json"), index.to_string().as_bytes())?;
        write(
            &layout.join("oci-layout"),
            br#"{"imageLayoutVersion":"1.0.0"}"#,
        )?;
        tar(&layout, &dir.path().join("image.tar"))?;
        Ok(ImageArchive {
            dir,
            name: name.to_owned(),
            manifests: vec![(format!("{os}/{architecture}"), manifest.0)],
        })
    }

    /// A multi-platform busybox image: an index of one manifest for this machine's platform
    /// and one for `linux/{other}` (such as `arm64`), each with the busybox layer and a layer
    /// writing `/etc/ctrd-platform` (`linux/ARCH`, no newline), in OCI layout as a tar file
    /// whose `index.json` names the index `tag` (push it with `skopeo copy --all
    /// oci-archive:FILE:TAG`, as [`crate::Registry::push_index`] does).
    pub fn multi_platform(name: &str, tag: &str, other: &str) -> Result<ImageArchive, Error> {
        let dir = tempfile::Builder::new()
            .prefix("ctrd-image-")
            .tempdir_in("/tmp")
            .map_err(|e| Error::io("/tmp", e))?;
        let layout = dir.path().join("layout");
        let blobs = layout.join("blobs/sha256");
        std::fs::create_dir_all(&blobs).map_err(|e| Error::io(&blobs, e))?;
        let rootfs = Rootfs::busybox()?;
        let base = layer_blob(&blobs, rootfs.path(), dir.path())?;
        let mut manifests = Vec::new();
        let mut entries = Vec::new();
        for architecture in [oci_arch(), other] {
            let platform = format!("linux/{architecture}");
            let content = dir.path().join(format!("platform-{architecture}"));
            let etc = content.join("etc");
            std::fs::create_dir_all(&etc).map_err(|e| Error::io(&etc, e))?;
            write(&etc.join("ctrd-platform"), platform.as_bytes())?;
            let marker = layer_blob(&blobs, &content, dir.path())?;
            let config = serde_json::json!({
                "architecture": architecture,
                "os": "linux",
                "config": { "Cmd": ["/bin/sh"], "Env": ["PATH=/bin"] },
                "rootfs": { "type": "layers", "diff_ids": [&base.0, &marker.0] },
            });
            let config = blob(&blobs, config.to_string().as_bytes())?;
            let layers: Vec<serde_json::Value> = [&base, &marker]
                .iter()
                .map(|(digest, size)| {
                    serde_json::json!({
                        "mediaType": "application/vnd.oci.image.layer.v1.tar",
                        "digest": digest, "size": size,
                    })
                })
                .collect();
            let manifest = serde_json::json!({
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": config.0, "size": config.1,
                },
                "layers": layers,
            });
            let manifest = blob(&blobs, manifest.to_string().as_bytes())?;
            entries.push(serde_json::json!({
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": manifest.0, "size": manifest.1,
                "platform": { "architecture": architecture, "os": "linux" },
            }));
            manifests.push((platform, manifest.0));
        }
        let index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": entries,
        });
        let index = blob(&blobs, index.to_string().as_bytes())?;
        let top = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [{
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "digest": index.0, "size": index.1,
                "annotations": {
                    "io.containerd.image.name": name,
                    "org.opencontainers.image.ref.name": tag,
                },
            }],
        });
        write(&layout.join("index.json"), top.to_string().as_bytes())?;
        write(
            &layout.join("oci-layout"),
            br#"{"imageLayoutVersion":"1.0.0"}"#,
        )?;
        tar(&layout, &dir.path().join("image.tar"))?;
        Ok(ImageArchive {
            dir,
            name: name.to_owned(),
            manifests,
        })
    }

    /// The digest of the manifest for `platform` (`os/arch`) in this archive.
    pub fn manifest_for(&self, platform: &str) -> Option<&str> {
        self.manifests
            .iter()
            .find(|(p, _)| p == platform)
            .map(|(_, d)| d.as_str())
    }

    /// The same busybox image as a `docker save` archive (`manifest.json`, a config and one
    /// `layer.tar`), named `name`.
    pub fn busybox_docker(name: &str) -> Result<ImageArchive, Error> {
        let dir = tempfile::Builder::new()
            .prefix("ctrd-image-")
            .tempdir_in("/tmp")
            .map_err(|e| Error::io("/tmp", e))?;
        let content = dir.path().join("content");
        let rootfs = Rootfs::busybox()?;
        let layer_path = dir.path().join("layer.tar");
        tar(rootfs.path(), &layer_path)?;
        let layer = std::fs::read(&layer_path).map_err(|e| Error::io(&layer_path, e))?;
        let layer_digest = hex(&layer);
        let layer_dir = content.join(&layer_digest);
        std::fs::create_dir_all(&layer_dir).map_err(|e| Error::io(&layer_dir, e))?;
        write(&layer_dir.join("layer.tar"), &layer)?;
        let config = serde_json::json!({
            "architecture": oci_arch(),
            "os": "linux",
            "config": { "Cmd": ["/bin/sh"], "Env": ["PATH=/bin"] },
            "rootfs": { "type": "layers", "diff_ids": [format!("sha256:{layer_digest}")] },
        })
        .to_string();
        let config_name = format!("{}.json", hex(config.as_bytes()));
        write(&content.join(&config_name), config.as_bytes())?;
        let manifest = serde_json::json!([{
            "Config": config_name,
            "RepoTags": [name],
            "Layers": [format!("{layer_digest}/layer.tar")],
        }]);
        write(
            &content.join("manifest.json"),
            manifest.to_string().as_bytes(),
        )?;
        tar(&content, &dir.path().join("image.tar"))?;
        Ok(ImageArchive {
            dir,
            name: name.to_owned(),
            manifests: Vec::new(),
        })
    }

    /// The archive file.
    pub fn path(&self) -> PathBuf {
        self.dir.path().join("image.tar")
    }

    /// The image's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// The OCI name of this machine's architecture.
pub(crate) fn oci_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// Tars `content` into an uncompressed layer blob (its digest is also its diff id).
fn layer_blob(blobs: &Path, content: &Path, scratch: &Path) -> Result<(String, usize), Error> {
    let layer = scratch.join("layer.tar");
    tar(content, &layer)?;
    let data = std::fs::read(&layer).map_err(|e| Error::io(&layer, e))?;
    let _ = std::fs::remove_file(&layer);
    blob(blobs, &data)
}

fn write(path: &Path, data: &[u8]) -> Result<(), Error> {
    std::fs::write(path, data).map_err(|e| Error::io(path, e))
}

/// The sha256 of `data` in hex.
fn hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Stores `data` as a content-addressed blob; its digest and size.
fn blob(blobs: &Path, data: &[u8]) -> Result<(String, usize), Error> {
    let hex = hex(data);
    write(&blobs.join(&hex), data)?;
    Ok((format!("sha256:{hex}"), data.len()))
}

/// Tars the content of `dir` (GNU tar, numeric root owner) into `out`.
fn tar(dir: &Path, out: &Path) -> Result<(), Error> {
    let status = Command::new("tar")
        .arg("-C")
        .arg(dir)
        .args(["--numeric-owner", "--owner=0", "--group=0", "-cf"])
        .arg(out)
        .arg(".")
        .status()
        .map_err(|e| Error::io("tar", e))?;
    if status.success() {
        Ok(())
    } else {
        Err(Error::io(
            out,
            std::io::Error::other(format!("tar failed ({status})")),
        ))
    }
}
