//! `-v` and `-info`, as containerd runs them.

use std::process::Command;

use ctrd_api::containerd::types::RuntimeInfo;
use ctrd_api::prost::Message;

const SHIM: &str = env!("CARGO_BIN_EXE_containerd-shim-runc-v2");

#[test]
fn version_names_the_binary() {
    let out = Command::new(SHIM).arg("-v").output().expect("run");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("containerd-shim-runc-v2:\n  Version:"),
        "{text}"
    );
}

#[test]
fn info_carries_runc_features() {
    let out = Command::new(SHIM).arg("-info").output().expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let info = RuntimeInfo::decode(out.stdout.as_slice()).expect("a RuntimeInfo");
    assert_eq!(info.name, "containerd-shim-runc-v2");
    let features = info.features.expect("runc features");
    assert_eq!(features.type_url, ctrd_runc_shim::FEATURES_TYPE_URL);
    let json: serde_json::Value = serde_json::from_slice(&features.value).expect("JSON");
    assert!(
        json["ociVersionMax"]
            .as_str()
            .is_some_and(|v| v.starts_with("1.")),
        "{json}"
    );
}

#[test]
fn bad_command_lines_fail_clearly() {
    let out = Command::new(SHIM)
        .args(["-id", "x", "start"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("-namespace is required"));
}
