//! Shared set-up of the client's daemon tests: a private containerd running our runc shim.

#![allow(dead_code)]

use ctrd_client::{Client, Error, FIFO_ROOT, PullOptions};
use ctrd_testbed::{Containerd, Daemon, OurShim};

/// A private containerd whose `io.containerd.runc.v2` is our shim, and a client on it.
pub struct Bed {
    /// The client, in the test's namespace.
    pub client: Client,
    /// The daemon.
    pub containerd: Containerd,
    _shim: OurShim,
}

impl Bed {
    /// Starts `daemon` with our shim and connects in `namespace`.
    pub async fn start(daemon: Daemon, namespace: &str) -> Bed {
        let shim = OurShim::build().unwrap_or_else(|e| panic!("{e}"));
        let containerd =
            Containerd::start_with_path(daemon, &[shim.path()]).unwrap_or_else(|e| panic!("{e}"));
        let client = Client::connect(containerd.grpc_address())
            .await
            .expect("connect")
            .try_with_namespace(namespace)
            .expect("namespace");
        Bed {
            client,
            containerd,
            _shim: shim,
        }
    }

    /// Fails unless the namespace holds no content, snapshot, lease, ingest, image, container
    /// or task, and no FIFO folder of the namespace is left.
    pub async fn assert_empty(&self) {
        let c = &self.client;
        assert_eq!(
            c.list_content(&[]).await.expect("content"),
            vec![],
            "content left"
        );
        assert_eq!(
            c.list_ingests().await.expect("ingests"),
            Vec::<String>::new(),
            "ingests left"
        );
        assert_eq!(
            c.list_leases().await.expect("leases"),
            Vec::<String>::new(),
            "leases left"
        );
        assert_eq!(
            c.list_images(&[]).await.expect("images"),
            vec![],
            "images left"
        );
        assert_eq!(
            c.list_containers(&[]).await.expect("containers"),
            vec![],
            "containers left"
        );
        assert_eq!(c.list_tasks().await.expect("tasks"), vec![], "tasks left");
        let snapshots = c.list_snapshots("overlayfs").await.expect("snapshots");
        assert!(snapshots.is_empty(), "snapshots left: {snapshots:?}");
        let prefix = format!("{}-", c.namespace());
        let fifos: Vec<String> = std::fs::read_dir(FIFO_ROOT)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.starts_with(&prefix))
                    .collect()
            })
            .unwrap_or_default();
        assert!(fifos.is_empty(), "FIFO folders left: {fifos:?}");
    }
}

/// The daemons to run against, each named for messages.
pub fn daemons() -> Vec<Daemon> {
    Daemon::selected()
}

/// Pulls `reference` with `options` and expects one error line holding every one of `words`;
/// then checks nothing was left.
pub async fn refused(bed: &Bed, reference: &str, options: PullOptions, words: &[&str]) {
    eprintln!("  {reference}: expecting {words:?}");
    let err = bed
        .client
        .pull(reference, options)
        .await
        .expect_err("the pull should fail");
    let text = err.to_string();
    assert!(matches!(err, Error::Registry { .. }), "{err:?}");
    assert_eq!(text.lines().count(), 1, "{text}");
    for word in words {
        assert!(text.contains(word), "{word:?} not in: {text}");
    }
    bed.assert_empty().await;
}

/// A copy of `archive` in `dir` as `name`, changed by `edit` (given the file and its length).
pub fn damaged(
    archive: &ctrd_testbed::ImageArchive,
    dir: &std::path::Path,
    name: &str,
    edit: impl FnOnce(&mut std::fs::File, u64),
) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::copy(archive.path(), &path).expect("copy archive");
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .expect("open");
    let len = file.metadata().expect("metadata").len();
    edit(&mut file, len);
    path
}
