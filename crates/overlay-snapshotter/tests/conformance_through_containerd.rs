//! `ctrd_snapshots::conformance`'s cases through containerd 1.6 and 2.1, with our snapshotter binary loaded
//! as a proxy plugin: containerd's metadata layer in front, our process behind; then the id
//! mapping labels through the same daemon.

mod common;

use common::PROXY_NAME;
use common::proxy::Proxied;
use ctrd_snapshots::conformance;
use ctrd_testbed::Daemon;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_case_through_containerd() {
    for daemon in Daemon::selected() {
        let proxied = Proxied::start(daemon, &[]);
        let target = proxied.target("ctrd-conformance").await;
        for case in conformance::CASES {
            eprintln!("containerd {}: {}", daemon.version(), case.name);
            if let Err(e) = conformance::run(&target, case).await {
                panic!("containerd {}: {}", daemon.version(), e.full_message());
            }
        }
        eprintln!("containerd {}: id mapping labels", daemon.version());
        id_mapping_labels_through(&proxied).await;
        drop(proxied);
    }
}

/// The id mapping labels reach our snapshotter through containerd's metadata layer (they
/// are `containerd.io/snapshot/` labels): a mapped snapshot gets idmapped mounts where the
/// kernel makes them, and a bad map comes back as InvalidArgument.
async fn id_mapping_labels_through(proxied: &Proxied) {
    use ctrd_api::containerd::services::leases::v1 as leases;
    use ctrd_api::containerd::services::snapshots::v1 as api;
    use ctrd_overlay_snapshotter::{GID_MAPPING_LABEL, UID_MAPPING_LABEL};

    let client = ctrd_client::Client::connect(proxied.containerd.grpc_address())
        .await
        .expect("connect to containerd")
        .with_namespace("ctrd-idmap");
    let lease = "ctrd-idmap-lease";
    client
        .leases()
        .create(leases::CreateRequest {
            id: lease.into(),
            labels: Default::default(),
        })
        .await
        .expect("lease");
    let req = |m| leased(lease, m);
    let prepare = |key: &str, parent: &str, uids: &str| api::PrepareSnapshotRequest {
        snapshotter: PROXY_NAME.into(),
        key: key.into(),
        parent: parent.into(),
        labels: [
            (UID_MAPPING_LABEL.to_owned(), uids.to_owned()),
            (GID_MAPPING_LABEL.to_owned(), "0:200000:65536".to_owned()),
        ]
        .into(),
    };
    let mut snapshots = client.snapshots();
    snapshots
        .prepare(req(api::PrepareSnapshotRequest {
            snapshotter: PROXY_NAME.into(),
            key: "idmap-base".into(),
            ..Default::default()
        }))
        .await
        .expect("prepare a base");
    snapshots
        .commit(leased(
            lease,
            api::CommitSnapshotRequest {
                snapshotter: PROXY_NAME.into(),
                name: "idmap-c".into(),
                key: "idmap-base".into(),
                ..Default::default()
            },
        ))
        .await
        .expect("commit it");
    let mounts = snapshots
        .prepare(req(prepare("idmap-1", "idmap-c", "0:100000:65536")))
        .await
        .expect("prepare with id mapping labels")
        .into_inner()
        .mounts;
    let idmapped = ctrd_mount::idmap::supported(&proxied.snapshotter.root());
    let options: Vec<&String> = mounts.iter().flat_map(|m| &m.options).collect();
    assert_eq!(
        options.contains(&&"uidmap=0:100000:65536".to_owned()),
        idmapped,
        "uidmap= exactly where the kernel makes idmapped mounts: {options:?}"
    );
    let status = snapshots
        .prepare(req(prepare("idmap-2", "idmap-c", "0:100000")))
        .await
        .expect_err("a bad map");
    assert_eq!(
        status.code(),
        tonic::Code::InvalidArgument,
        "{}",
        status.message()
    );
    client
        .leases()
        .delete(leases::DeleteRequest {
            id: lease.into(),
            sync: true,
        })
        .await
        .expect("end the lease");
}

/// `message` as a request in lease `lease`.
fn leased<T>(lease: &str, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Ok(value) = lease.parse() {
        request.metadata_mut().insert("containerd-lease", value);
    }
    request
}
