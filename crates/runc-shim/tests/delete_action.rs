//! The `delete` action containerd runs for a shim that is gone: it force-deletes the container
//! left in runc and reports it killed; with nothing left in runc it starts no runc at all.

use std::process::Command;

use ctrd_api::containerd::task::v2::DeleteResponse;
use ctrd_api::prost::Message;
use ctrd_testbed::Bundle;

const SHIM: &str = env!("CARGO_BIN_EXE_containerd-shim-runc-v2");

fn delete_action(namespace: &str, id: &str, bundle: &std::path::Path) -> DeleteResponse {
    let out = Command::new(SHIM)
        .args([
            "-namespace",
            namespace,
            "-id",
            id,
            "-address",
            "/nonexistent.sock",
            "-bundle",
        ])
        .arg(bundle)
        .arg("delete")
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    DeleteResponse::decode(out.stdout.as_slice()).expect("a DeleteResponse")
}

#[test]
fn cleans_up_after_a_dead_shim() {
    ctrd_testbed::require_root().unwrap_or_else(|e| panic!("{e}"));
    let namespace = "ctrd-delete-action";
    let root = ctrd_testbed::runc_root(namespace);
    let bundle = Bundle::busybox(&["/bin/sleep", "300"]).expect("bundle");

    // A container the dead shim left running in runc.
    let status = Command::new("runc")
        .arg("--root")
        .arg(&root)
        .args(["run", "--detach", "--bundle"])
        .arg(bundle.path())
        .arg("orphan")
        .status()
        .expect("runc run");
    assert!(status.success());
    assert!(root.join("orphan").exists());

    let reply = delete_action(namespace, "orphan", bundle.path());
    assert_eq!(reply.exit_status, 137);
    assert!(reply.exited_at.is_some());
    assert!(!root.join("orphan").exists(), "runc's state is gone");

    // Nothing in runc: the action still answers, without error.
    let reply = delete_action(namespace, "never-existed", bundle.path());
    assert_eq!(reply.exit_status, 137);
    let _ = std::fs::remove_dir(&root);
}
