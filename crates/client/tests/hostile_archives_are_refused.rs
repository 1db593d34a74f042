//! Image archives built to hurt the importer: a digest that is not sha256 hex is refused
//! before it names a file; an index that names one manifest a thousand times (which, nested,
//! would be walked a thousand to the fourth times) is planned once per blob, quickly.

use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

fn digest(data: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(data))
}

fn blob_path(data: &[u8]) -> String {
    format!("blobs/sha256/{:x}", Sha256::digest(data))
}

/// A tar archive of `files`, written to a temporary file.
fn archive(files: &[(String, Vec<u8>)]) -> tempfile::NamedTempFile {
    let file = tempfile::NamedTempFile::new().expect("temp file");
    let mut builder = tar::Builder::new(file.reopen().expect("reopen"));
    for (name, data) in files {
        let mut header = tar::Header::new_ustar();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder
            .append_data(&mut header, name, data.as_slice())
            .expect("append");
    }
    builder.finish().expect("finish");
    file
}

fn manifest_and_blobs() -> (Vec<u8>, Vec<(String, Vec<u8>)>) {
    let layer = b"not really a layer".to_vec();
    let config = serde_json::json!({"rootfs": {"diff_ids": [digest(&layer)]}})
        .to_string()
        .into_bytes();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": digest(&config), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": digest(&layer), "size": layer.len()}],
    })
    .to_string()
    .into_bytes();
    let blobs = vec![
        (blob_path(&manifest), manifest.clone()),
        (blob_path(&config), config),
        (blob_path(&layer), layer),
    ];
    (manifest, blobs)
}

#[test]
fn an_index_naming_one_manifest_many_times_is_planned_once() {
    let (manifest, mut files) = manifest_and_blobs();
    let entry = serde_json::json!({
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": digest(&manifest), "size": manifest.len(),
    });
    // Three levels of indexes, each naming the level below 1000 times.
    let mut below = entry;
    for _ in 0..3 {
        let index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": vec![below.clone(); 1000],
        })
        .to_string()
        .into_bytes();
        below = serde_json::json!({
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": digest(&index), "size": index.len(),
        });
        files.push((blob_path(&index), index));
    }
    let top = serde_json::json!({"schemaVersion": 2, "manifests": [below]})
        .to_string()
        .into_bytes();
    files.push(("index.json".into(), top));
    let file = archive(&files);
    let started = Instant::now();
    let blobs = ctrd_client::fuzzing::archive(file.path()).expect("a plan");
    assert_eq!(
        blobs, 6,
        "three indexes, the manifest, its config and layer"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "planned in {:?}",
        started.elapsed()
    );
}

#[test]
fn digests_that_are_not_sha256_hex_are_refused() {
    let (_, files) = manifest_and_blobs();
    for bad in ["sha256:../../../../etc/passwd", "md5:0123", "sha256:ABC"] {
        let top = serde_json::json!({"schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": bad, "size": 1,
        }]})
        .to_string()
        .into_bytes();
        let mut files = files.clone();
        files.push(("index.json".into(), top));
        let file = archive(&files);
        assert_eq!(ctrd_client::fuzzing::archive(file.path()), None, "{bad}");
    }
}
