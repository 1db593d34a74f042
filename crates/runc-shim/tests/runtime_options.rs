//! Runc options on the container record reach our shim: `shim_cgroup` places the serving shim
//! in that cgroup. The container is made with the generated client, since ctr cannot set
//! runtime options.

mod common;

use std::collections::HashMap;

use common::{Bed, Shim, shim_pids};
use ctrd_api::TypeUrl;
use ctrd_api::containerd::runc::v1::Options;
use ctrd_api::containerd::services::containers::v1 as containers;
use ctrd_testbed::{Bundle, Daemon};

/// Cgroup folders made for the test on the memory and pids hierarchies (v1) or the unified one.
struct TestCgroup {
    dirs: Vec<std::path::PathBuf>,
}

impl TestCgroup {
    fn new(name: &str) -> TestCgroup {
        let root = std::path::Path::new("/sys/fs/cgroup");
        let dirs: Vec<_> = if root.join("cgroup.controllers").exists() {
            vec![root.join(name)]
        } else {
            ["memory", "pids"]
                .iter()
                .map(|h| root.join(h).join(name))
                .collect()
        };
        for dir in &dirs {
            std::fs::create_dir_all(dir).expect("cgroup");
        }
        TestCgroup { dirs }
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        for dir in &self.dirs {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

fn shim_in_cgroup(daemon: Daemon) {
    let bed = Bed::new(daemon, Shim::Ours);
    let name = format!("ctrd-shimcg-{}", daemon.version().replace('.', "-"));
    let cgroup = TestCgroup::new(&name);

    let bundle = Bundle::busybox(&["/bin/sleep", "300"]).expect("bundle");
    let rootfs = bed.rootfs();
    bundle
        .edit_spec(|spec| spec["root"]["path"] = rootfs.clone().into())
        .expect("spec");
    let spec = std::fs::read(bundle.config_path()).expect("spec");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let client = ctrd_client::Client::connect(bed.containerd().grpc_address())
            .await
            .expect("connect")
            .with_namespace(&bed.ns);
        client
            .containers()
            .create(containers::CreateContainerRequest {
                container: Some(containers::Container {
                    id: "cg".into(),
                    labels: HashMap::new(),
                    runtime: Some(containers::container::Runtime {
                        name: "io.containerd.runc.v2".into(),
                        options: Some(
                            Options {
                                shim_cgroup: format!("/{name}"),
                                ..Default::default()
                            }
                            .to_any(),
                        ),
                    }),
                    spec: Some(ctrd_api::prost_types::Any {
                        type_url: "types.containerd.io/opencontainers/runtime-spec/1/Spec".into(),
                        value: spec,
                    }),
                    ..Default::default()
                }),
            })
            .await
            .expect("create container");
    });
    bed.ok(&["tasks", "start", "-d", "cg"]);
    let shims = shim_pids(bed.containerd());
    assert_eq!(shims.len(), 1);
    let membership = std::fs::read_to_string(format!("/proc/{}/cgroup", shims[0])).expect("cgroup");
    assert!(
        membership
            .lines()
            .any(|l| l.ends_with(&format!(":/{name}"))),
        "the shim is not in /{name}:\n{membership}"
    );
    bed.remove("cg");
    bed.eventually("the shim exits", || shim_pids(bed.containerd()).is_empty());
    drop(cgroup);
}

#[test]
fn shim_cgroup_on_containerd_1_6() {
    shim_in_cgroup(Daemon::Bookworm);
}

#[test]
fn shim_cgroup_on_containerd_2_1() {
    shim_in_cgroup(Daemon::Sid);
}

#[test]
fn shim_cgroup_on_containerd_2_4() {
    shim_in_cgroup(Daemon::Upstream);
}
