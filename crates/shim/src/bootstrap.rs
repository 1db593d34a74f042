//! What containerd sends a shim's `start` on standard input, and how the shim answers.
//!
//! Three generations are in use:
//! - containerd 1.6: stdin holds the runtime options as a protobuf `Any` (or nothing); the
//!   answer is the plain socket address;
//! - containerd 1.7 to 2.2: the same input; the answer may be JSON
//!   `{"version":V,"address":...,"protocol":"ttrpc"}`, where version 3 selects task API v3
//!   (2.x only; 1.7 refuses it);
//! - containerd 2.3 and later: stdin holds a protobuf `BootstrapParams`, and the answer is a
//!   protobuf `BootstrapResult`.

use std::path::Path;

use ctrd_api::containerd::runtime::bootstrap::v1::{BootstrapParams, BootstrapResult};
use ctrd_api::prost_types::Any;
use prost::Message;

use crate::flags::Flags;

/// Environment variable set by containerd 1.7 and later when it starts a shim.
pub const MAX_SHIM_VERSION_ENV: &str = "MAX_SHIM_VERSION";
/// Overrides the task API version announced to containerd 1.7+ (`2` or `3`).
pub const TASK_API_ENV: &str = "CTRD_SHIM_TASK_API";

/// What `start` received.
#[derive(Debug, Clone, PartialEq)]
pub enum StartInput {
    /// containerd 2.3+: the bootstrap parameters.
    Bootstrap(BootstrapParams),
    /// Older containerd: the runtime options, if any were sent and could be decoded.
    Legacy {
        /// The options (`containerd.runc.v1.Options`, CRI `runtimeoptions.v1.Options`, ...).
        options: Option<Any>,
        /// Input that was neither (kept for the shim to inspect; never fatal).
        undecoded: Vec<u8>,
    },
}

impl StartInput {
    /// Classifies `input`. A `BootstrapParams` is recognised by carrying this shim's own id and
    /// namespace, which an options `Any` never does; undecodable input is kept, not fatal.
    pub fn parse(input: &[u8], flags: &Flags) -> StartInput {
        if !input.is_empty()
            && let Ok(params) = BootstrapParams::decode(input)
            && params.instance_id == flags.id
            && params.namespace == flags.namespace
        {
            return StartInput::Bootstrap(params);
        }
        match Any::decode(input) {
            Ok(any) if !any.type_url.is_empty() => StartInput::Legacy {
                options: Some(any),
                undecoded: Vec::new(),
            },
            _ => StartInput::Legacy {
                options: None,
                undecoded: input.to_vec(),
            },
        }
    }

    /// The runtime options: the legacy `Any`, or the first bootstrap extension.
    pub fn options(&self) -> Option<&Any> {
        match self {
            StartInput::Legacy { options, .. } => options.as_ref(),
            StartInput::Bootstrap(params) => {
                params.extensions.iter().find_map(|e| e.value.as_ref())
            }
        }
    }
}

/// How `start` must answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// The bare address (containerd 1.6).
    Plain,
    /// JSON bootstrap parameters with this task API version (containerd 1.7 to 2.2).
    Json(u32),
    /// A protobuf `BootstrapResult` (containerd 2.3+).
    Protobuf,
}

impl Reply {
    /// Picks the answer for `input`.
    ///
    /// For legacy input, containerd 1.7 and 2.x look alike (both set `MAX_SHIM_VERSION=2`), yet
    /// only 2.x accepts task API v3. The daemon's state folder tells them apart: 2.x keeps its
    /// sandbox controller's state there, 1.x does not. When unsure the answer is version 2,
    /// which every daemon accepts.
    pub fn choose(
        input: &StartInput,
        max_shim_version: Option<&str>,
        task_api: Option<&str>,
        bundle: &Path,
    ) -> Reply {
        if matches!(input, StartInput::Bootstrap(_)) {
            return Reply::Protobuf;
        }
        if max_shim_version.is_none() {
            return Reply::Plain;
        }
        match task_api {
            Some("2") => return Reply::Json(2),
            Some("3") => return Reply::Json(3),
            _ => {}
        }
        // bundle = <state>/io.containerd.runtime.v2.task/<namespace>/<id>
        let state = bundle.ancestors().nth(3);
        if state.is_some_and(|s| s.join("io.containerd.sandbox.controller.v1.shim").is_dir()) {
            Reply::Json(3)
        } else {
            Reply::Json(2)
        }
    }

    /// The bytes to print for `address`.
    pub fn encode(self, address: &str) -> Vec<u8> {
        match self {
            Reply::Plain => address.as_bytes().to_vec(),
            Reply::Json(version) => serde_json::json!({
                "version": version,
                "address": address,
                "protocol": "ttrpc",
            })
            .to_string()
            .into_bytes(),
            Reply::Protobuf => BootstrapResult {
                version: 3,
                address: address.to_owned(),
                protocol: "ttrpc".to_owned(),
                ..Default::default()
            }
            .encode_to_vec(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ctrd_api::TypeUrl;
    use ctrd_api::containerd::runc::v1::Options;
    use ctrd_api::containerd::runtime::bootstrap::v1::Extension;

    fn flags() -> Flags {
        Flags::parse(
            [
                "-namespace",
                "k8s.io",
                "-id",
                "pod-1",
                "-address",
                "/run/c.sock",
                "start",
            ]
            .iter()
            .map(|s| s.to_string()),
        )
        .expect("flags")
    }

    /// Bytes a containerd 2.3 daemon writes: BootstrapParams with runc options as an extension.
    fn recorded_bootstrap() -> Vec<u8> {
        BootstrapParams {
            instance_id: "pod-1".into(),
            namespace: "k8s.io".into(),
            log_level: -4,
            containerd_version: "2.3.0".into(),
            containerd_ttrpc_address: "/run/containerd/containerd.sock.ttrpc".into(),
            containerd_grpc_address: "/run/containerd/containerd.sock".into(),
            containerd_binary: "/usr/bin/containerd".into(),
            extensions: vec![Extension {
                value: Some(
                    Options {
                        systemd_cgroup: true,
                        ..Default::default()
                    }
                    .to_any(),
                ),
            }],
            socket_dir: None,
        }
        .encode_to_vec()
    }

    #[test]
    fn new_protocol_is_recognised_and_answered_in_protobuf() {
        let input = StartInput::parse(&recorded_bootstrap(), &flags());
        let StartInput::Bootstrap(params) = &input else {
            panic!("not recognised: {input:?}");
        };
        assert_eq!(params.containerd_version, "2.3.0");
        let options = Options::from_any(input.options().expect("options")).expect("runc options");
        assert!(options.systemd_cgroup);
        let reply = Reply::choose(&input, Some("2"), None, Path::new("/x"));
        assert_eq!(reply, Reply::Protobuf);
        let result =
            BootstrapResult::decode(reply.encode("unix:///s/1").as_slice()).expect("decode");
        assert_eq!(
            (
                result.version,
                result.address.as_str(),
                result.protocol.as_str()
            ),
            (3, "unix:///s/1", "ttrpc")
        );
    }

    #[test]
    fn legacy_options_and_empty_input() {
        let any = Options {
            binary_name: "runc".into(),
            ..Default::default()
        }
        .to_any();
        let input = StartInput::parse(&any.encode_to_vec(), &flags());
        assert_eq!(input.options(), Some(&any));
        let empty = StartInput::parse(&[], &flags());
        assert_eq!(empty.options(), None);
        // A runtime-options Any decodes as BootstrapParams too; its id never matches.
        assert!(matches!(input, StartInput::Legacy { .. }));
    }

    #[test]
    fn unknown_input_is_kept_not_fatal() {
        let toml = b"BinaryName = \"runc\"\nSystemdCgroup = true\n";
        let input = StartInput::parse(toml, &flags());
        match input {
            StartInput::Legacy {
                options: None,
                undecoded,
            } => assert_eq!(undecoded, toml),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn answer_per_daemon_generation() {
        let legacy = StartInput::parse(&[], &flags());
        let dir = tempfile::tempdir().expect("tempdir");
        let bundle = dir.path().join("io.containerd.runtime.v2.task/ns/id");
        std::fs::create_dir_all(&bundle).expect("bundle");
        assert_eq!(
            Reply::choose(&legacy, None, None, &bundle),
            Reply::Plain,
            "1.6"
        );
        assert_eq!(
            Reply::choose(&legacy, Some("2"), None, &bundle),
            Reply::Json(2),
            "1.7"
        );
        std::fs::create_dir(dir.path().join("io.containerd.sandbox.controller.v1.shim"))
            .expect("marker");
        assert_eq!(
            Reply::choose(&legacy, Some("2"), None, &bundle),
            Reply::Json(3),
            "2.x"
        );
        assert_eq!(
            Reply::choose(&legacy, Some("2"), Some("2"), &bundle),
            Reply::Json(2),
            "override"
        );
        assert_eq!(Reply::Plain.encode("unix:///a"), b"unix:///a");
        let json: serde_json::Value =
            serde_json::from_slice(&Reply::Json(3).encode("unix:///a")).expect("json");
        assert_eq!(json["version"], 3);
        assert_eq!(json["protocol"], "ttrpc");
    }
}
