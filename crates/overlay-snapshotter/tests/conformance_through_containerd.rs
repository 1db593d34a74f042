//! `ctrd_snapshots::conformance`'s cases through containerd 1.6 and 2.1, with our snapshotter binary loaded
//! as a proxy plugin: containerd's metadata layer in front, our process behind.

mod common;

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
        drop(proxied);
    }
}
