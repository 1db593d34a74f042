//! Entry points for the fuzz targets under `fuzz/` in the repository: what the client reads
//! from image archives and registries, through the same code as an import or a pull. Not part
//! of the API.

use std::path::Path;

use crate::image::oci::{self, Index, Manifest, Platform};

/// An image archive (OCI layout or `docker save` tar) at `path`, scanned and planned as an
/// import plans it before writing anything. Returns how many blobs it would write.
pub fn archive(path: &Path) -> Option<usize> {
    crate::image::archive::plan_file(path, Some("example.invalid/fuzz:latest")).ok()
}

/// A registry's answer for a manifest or index, and an image reference, read as a pull reads
/// them: the index's choice for this platform, the manifest's blobs and their digests.
pub fn registry(document: &[u8], reference: &str) {
    if let Ok(parsed) = crate::image::registry::Reference::parse(reference) {
        let _ = (parsed.host, parsed.repository, parsed.reference);
    }
    if let Ok(index) = serde_json::from_slice::<Index>(document)
        && let Some((_, chosen)) = oci::choose_manifest(&index, &Platform::host())
    {
        let _ = oci::digest_problem(&chosen.digest);
    }
    if let Ok(manifest) = serde_json::from_slice::<Manifest>(document) {
        for blob in std::iter::once(&manifest.config).chain(&manifest.layers) {
            let _ = oci::digest_problem(&blob.digest);
        }
    }
    if let Ok(config) = serde_json::from_slice::<oci::ImageConfig>(document) {
        let _ = oci::chain_ids(&config.rootfs.diff_ids);
    }
    let _ = oci::normalize_name(reference);
}
