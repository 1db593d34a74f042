//! Image archives (OCI layout and `docker save`) built offline from the busybox rootfs.

use std::os::unix::fs::PermissionsExt;
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
        let layers: Vec<Vec<Change>> = layers
            .iter()
            .map(|changes| {
                changes
                    .iter()
                    .map(|(path, data)| match data {
                        Some(data) => Change::Write(ImageFile::new(path, data.as_bytes())),
                        None => Change::Delete(path.clone()),
                    })
                    .collect()
            })
            .collect();
        ImageArchive::build(name, &layers, config)
    }

    /// A busybox image named `name` with `config` as its image configuration and `files` in a
    /// layer on top of busybox's (replacing busybox's own at the same path, such as
    /// `/etc/passwd`).
    pub fn busybox_with(
        name: &str,
        config: &ImageConfig,
        files: &[ImageFile],
    ) -> Result<ImageArchive, Error> {
        let layers: Vec<Vec<Change>> = if files.is_empty() {
            Vec::new()
        } else {
            vec![files.iter().cloned().map(Change::Write).collect()]
        };
        ImageArchive::build(name, &layers, config.to_json())
    }

    /// A pause image for pods' sandbox containers, named `name` (such as
    /// [`PAUSE_IMAGE`](crate::cri::PAUSE_IMAGE)): busybox with a static `/pause` program as
    /// PID 1 that sleeps, reaps children and leaves with status 0 on SIGTERM or SIGINT, as
    /// Kubernetes' `pause` does. Needs the machine's C compiler (`cc`, `libc6-dev`).
    pub fn pause(name: &str) -> Result<ImageArchive, Error> {
        let config = serde_json::json!({
            "Entrypoint": ["/pause"],
            "Env": ["PATH=/bin"],
        });
        let program = crate::static_c::pause_program()?;
        let layer = vec![Change::Write(
            ImageFile::new("/pause", &program).mode(0o755),
        )];
        ImageArchive::build(name, &[layer], config)
    }

    fn build(
        name: &str,
        layers: &[Vec<Change>],
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
            for change in changes {
                let path = match change {
                    Change::Write(file) => &file.path,
                    Change::Delete(path) => path,
                };
                let relative = Path::new(path.trim_start_matches('/'));
                let target = match change {
                    Change::Write(_) => content.join(relative),
                    Change::Delete(_) => {
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
                match change {
                    Change::Write(file) => {
                        write(&target, &file.content)?;
                        let mode = std::fs::Permissions::from_mode(file.mode);
                        std::fs::set_permissions(&target, mode)
                            .map_err(|e| Error::io(&target, e))?;
                    }
                    Change::Delete(_) => write(&target, b"")?,
                }
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
        let manifest = manifest_blob(&blobs, &config, &digests)?;
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
            let manifest = manifest_blob(&blobs, &config, &[base.clone(), marker.clone()])?;
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

/// A file in an image layer: its absolute path in the image, content and mode (owner root).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageFile {
    /// Where it goes in the image, such as `/etc/passwd`.
    pub path: String,
    /// Its bytes.
    pub content: Vec<u8>,
    /// Its permission bits, set-user-ID included (`0o4755` for a set-user-ID root program).
    pub mode: u32,
}

impl ImageFile {
    /// A regular file with mode 0644.
    pub fn new(path: &str, content: &[u8]) -> ImageFile {
        ImageFile {
            path: path.into(),
            content: content.to_vec(),
            mode: 0o644,
        }
    }

    /// The same file with `mode`.
    pub fn mode(mut self, mode: u32) -> ImageFile {
        self.mode = mode;
        self
    }
}

/// The parts of an OCI image configuration (`config` in the config blob) a test chooses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageConfig {
    /// `User`: `uid`, `name`, `uid:gid` or `name:group`; empty for root.
    pub user: String,
    /// `Entrypoint`.
    pub entrypoint: Vec<String>,
    /// `Cmd`.
    pub cmd: Vec<String>,
    /// `Env`, as `NAME=value`.
    pub env: Vec<String>,
}

impl Default for ImageConfig {
    /// busybox's shell as the command, `PATH=/bin`, root.
    fn default() -> ImageConfig {
        ImageConfig {
            user: String::new(),
            entrypoint: Vec::new(),
            cmd: vec!["/bin/sh".into()],
            env: vec!["PATH=/bin".into()],
        }
    }
}

impl ImageConfig {
    fn to_json(&self) -> serde_json::Value {
        let mut config = serde_json::json!({ "Env": self.env, "Cmd": self.cmd });
        if !self.entrypoint.is_empty() {
            config["Entrypoint"] = serde_json::json!(self.entrypoint);
        }
        if !self.user.is_empty() {
            config["User"] = serde_json::json!(self.user);
        }
        config
    }
}

/// One change an image layer makes.
enum Change {
    /// Adds or replaces a file (and makes its folders).
    Write(ImageFile),
    /// Hides what a lower layer holds at this path (an OCI whiteout).
    Delete(String),
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

/// Stores `config` and an OCI manifest naming it and the uncompressed `layers` (digest and
/// size each) as blobs; the manifest's digest and size.
fn manifest_blob(
    blobs: &Path,
    config: &serde_json::Value,
    layers: &[(String, usize)],
) -> Result<(String, usize), Error> {
    let config = blob(blobs, config.to_string().as_bytes())?;
    let layers: Vec<serde_json::Value> = layers
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
    blob(blobs, manifest.to_string().as_bytes())
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
