//! `ctrd_snapshots::conformance`'s cases through every selected containerd
//! (`CTRD_TEST_DAEMONS`, by default 1.6, 2.1 and 2.4), with our snapshotter binary loaded as a
//! proxy plugin: containerd's metadata layer in front, our process behind; then the id
//! mapping labels through the same daemon. On a daemon that passes a commit's parent on
//! (2.2+), the rebase case also runs against containerd's built-in overlayfs, so the case
//! asks of ours what containerd's own snapshotter does. A case that does not apply to a
//! daemon (rebase on 1.x and 2.1, which drop the field) is listed as such, and only there.

mod common;

use common::PROXY_NAME;
use common::proxy::Proxied;
use ctrd_snapshots::conformance::{self, Case, Target};
use ctrd_testbed::Daemon;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_case_through_containerd() {
    for daemon in Daemon::selected() {
        let proxied = Proxied::start(daemon, &[]);
        let target = proxied.target("ctrd-conformance").await;
        let skipped = run_cases(daemon, PROXY_NAME, &target, conformance::CASES).await;
        // Only the rebase case may be left out, and only where the daemon drops the field.
        let expected: Vec<&str> = if target.commit_carries_parent() {
            Vec::new()
        } else {
            conformance::CASES
                .iter()
                .filter(|case| case.rebase)
                .map(|case| case.name)
                .collect()
        };
        assert_eq!(skipped, expected, "containerd {}", daemon.version());
        assert_eq!(
            target.commit_carries_parent(),
            daemon == Daemon::Upstream,
            "containerd {} passes a commit's parent on",
            daemon.version()
        );
        if target.commit_carries_parent() {
            let built_in = Target::through_containerd(
                &proxied.containerd.grpc_address(),
                BUILT_IN,
                "ctrd-conformance-built-in",
            )
            .await
            .unwrap_or_else(|e| panic!("{}", e.full_message()))
            .with_folders(
                proxied
                    .containerd
                    .dir()
                    .join("root/io.containerd.snapshotter.v1.overlayfs/snapshots"),
            );
            let rebase: Vec<Case> = conformance::CASES
                .iter()
                .filter(|case| case.rebase)
                .copied()
                .collect();
            let skipped = run_cases(daemon, BUILT_IN, &built_in, &rebase).await;
            assert!(skipped.is_empty(), "{skipped:?}");
        }
        eprintln!("containerd {}: id mapping labels", daemon.version());
        id_mapping_labels_through(&proxied).await;
        drop(proxied);
    }
}

/// containerd's built-in overlay snapshotter.
const BUILT_IN: &str = "overlayfs";

/// Runs `cases` against `target` (`snapshotter` on `daemon`), failing on the first that
/// fails; the names of those that did not apply, each reported with its reason.
async fn run_cases(
    daemon: Daemon,
    snapshotter: &str,
    target: &Target,
    cases: &[Case],
) -> Vec<&'static str> {
    let mut skipped = Vec::new();
    for case in cases {
        let at = format!("containerd {}, {snapshotter}", daemon.version());
        match conformance::run(target, case).await {
            Ok(()) => eprintln!("{at}: {}: passed", case.name),
            Err(ctrd_snapshots::Error::NotApplicable { case, reason }) => {
                eprintln!("{at}: {case}: not applicable: {reason}");
                skipped.push(case);
            }
            Err(e) => panic!("{at}: {}", e.full_message()),
        }
    }
    skipped
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
