//! The OCI (and Docker) image formats: descriptors, indexes, manifests, configs.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// Docker manifest list.
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker manifest.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker image config.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// Docker uncompressed layer.
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
/// Docker gzip-compressed layer.
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// What a manifest or index points at.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// Media type.
    #[serde(default)]
    pub media_type: String,
    /// Digest.
    pub digest: String,
    /// Size in bytes.
    pub size: u64,
    /// Platform (in indexes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "HashMap::is_empty")]
    pub annotations: HashMap<String, String>,
}

/// An OS and architecture.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Platform {
    /// Such as `amd64`.
    pub architecture: String,
    /// Such as `linux`.
    pub os: String,
    /// Such as `v7`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Platform {
    /// The platform this process runs on.
    pub fn host() -> Platform {
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            other => other,
        };
        Platform {
            architecture: architecture.to_owned(),
            os: "linux".to_owned(),
            variant: None,
        }
    }

    /// Parses `os/architecture[/variant]`, such as `linux/arm64/v8`.
    pub fn parse(text: &str) -> Option<Platform> {
        let mut parts = text.split('/');
        let (Some(os), Some(architecture)) = (parts.next(), parts.next()) else {
            return None;
        };
        let variant = parts.next().map(str::to_owned);
        if os.is_empty() || architecture.is_empty() || parts.next().is_some() {
            return None;
        }
        Some(Platform {
            architecture: architecture.to_owned(),
            os: os.to_owned(),
            variant,
        })
    }

    /// Whether an index entry for `other` serves this platform: same OS and architecture,
    /// and the same variant when this one names a variant.
    pub fn matches(&self, other: &Platform) -> bool {
        self.os == other.os
            && self.architecture == other.architecture
            && (self.variant.is_none() || self.variant == other.variant)
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

/// An index (or Docker manifest list).
#[derive(Debug, Clone, Deserialize)]
pub struct Index {
    /// The manifests.
    pub manifests: Vec<Descriptor>,
}

/// An image manifest.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// Always 2.
    pub schema_version: u32,
    /// Media type.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub media_type: String,
    /// The config blob.
    pub config: Descriptor,
    /// The layers, bottom first.
    pub layers: Vec<Descriptor>,
}

/// The parts of an image config a container needs.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ImageConfig {
    /// How to run it.
    #[serde(default)]
    pub config: Option<RunConfig>,
    /// The uncompressed layer digests.
    pub rootfs: RootFs,
}

/// The `rootfs` section of an image config.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RootFs {
    /// Digests of the uncompressed layers, bottom first.
    #[serde(default)]
    pub diff_ids: Vec<String>,
}

/// The `config` section of an image config.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RunConfig {
    /// Environment, `KEY=value`.
    #[serde(default)]
    pub env: Option<Vec<String>>,
    /// Entrypoint.
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    /// Default arguments.
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    /// Working directory.
    #[serde(default)]
    pub working_dir: Option<String>,
    /// User, `uid[:gid]`.
    #[serde(default)]
    pub user: Option<String>,
}

/// Whether `media_type` is an index or manifest list.
pub fn is_index(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_LIST
}

/// Whether `media_type` is an image manifest.
pub fn is_manifest(media_type: &str) -> bool {
    media_type == OCI_MANIFEST || media_type == DOCKER_MANIFEST
}

/// Why `digest` is not a digest this client can fetch or verify (`sha256:` and 64 lowercase
/// hex digits), or `None` if it is one. A digest from a registry or an archive becomes part of
/// a URL or a path, so nothing else may pass.
pub fn digest_problem(digest: &str) -> Option<&'static str> {
    let Some(hex) = digest.strip_prefix("sha256:") else {
        return Some("only sha256 digests are supported");
    };
    if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Some("a sha256 digest is 64 lowercase hex digits");
    }
    None
}

/// The entry of `index` for `platform`: the first whose platform matches, or has none.
pub fn choose_manifest<'a>(
    index: &'a Index,
    platform: &Platform,
) -> Option<(usize, &'a Descriptor)> {
    index.manifests.iter().enumerate().find(|(_, m)| {
        m.platform
            .as_ref()
            .is_none_or(|p| p.os == platform.os && p.architecture == platform.architecture)
    })
}

/// The `sha256:` digest of `data`.
pub fn sha256(data: &[u8]) -> String {
    hex_digest(Sha256::digest(data).as_slice())
}

/// `sha256:` followed by `bytes` in hex.
pub fn hex_digest(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(7 + bytes.len() * 2);
    out.push_str("sha256:");
    for b in bytes {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// The chain ids of layers with `diff_ids`: each names a layer together with all below it.
pub fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    let mut chain: Vec<String> = Vec::with_capacity(diff_ids.len());
    for diff in diff_ids {
        let next = match chain.last() {
            None => diff.clone(),
            Some(parent) => sha256(format!("{parent} {diff}").as_bytes()),
        };
        chain.push(next);
    }
    chain
}

/// A full image reference for `name` as Docker tools write it (`busybox:latest` is
/// `docker.io/library/busybox:latest`).
pub fn normalize_name(name: &str) -> String {
    let (repo, tag) = match name.rsplit_once(':') {
        Some((r, t)) if !t.contains('/') => (r, Some(t)),
        _ => (name, None),
    };
    let (repo, tag) = if name.contains('@') {
        (name, None)
    } else {
        (repo, tag.or(Some("latest")))
    };
    let first = repo.split('/').next().unwrap_or(repo);
    let has_host =
        repo.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    let full = if has_host {
        repo.to_owned()
    } else if repo.contains('/') {
        format!("docker.io/{repo}")
    } else {
        format!("docker.io/library/{repo}")
    };
    match tag {
        Some(tag) => format!("{full}:{tag}"),
        None => full,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sha256_hex_digests_pass() {
        assert_eq!(digest_problem(&sha256(b"x")), None);
        for bad in [
            "",
            "sha256:",
            "sha512:00",
            "sha256:../../../etc/passwd",
            "sha256:ABCDEF0000000000000000000000000000000000000000000000000000000000",
            &format!("sha256:{}?", "a".repeat(63)),
            &format!("sha256:{}", "a".repeat(65)),
        ] {
            assert!(digest_problem(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn names_are_normalized_like_docker() {
        assert_eq!(
            normalize_name("busybox"),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(normalize_name("busybox:1"), "docker.io/library/busybox:1");
        assert_eq!(normalize_name("me/app:2"), "docker.io/me/app:2");
        assert_eq!(
            normalize_name("localhost:5000/app"),
            "localhost:5000/app:latest"
        );
        assert_eq!(
            normalize_name("docker.io/library/busybox:latest"),
            "docker.io/library/busybox:latest"
        );
    }

    #[test]
    fn chain_ids_follow_the_oci_definition() {
        let ids = chain_ids(&["sha256:a".into(), "sha256:b".into()]);
        assert_eq!(ids[0], "sha256:a");
        assert_eq!(ids[1], sha256(b"sha256:a sha256:b"));
    }
}
