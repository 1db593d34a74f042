//! Fields that containerd's API gained after the version the pinned package carries, added to
//! the pinned descriptor sets before generation (the vendored files stay as published).
//!
//! Debian's `golang-github-containerd-containerd-api-dev` 2.1.9 predates them; containerd 2.2
//! and later send them, and a message decoded without them silently drops what they carry.

use prost::Message;
use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{FieldDescriptorProto, FileDescriptorSet};

use crate::Error;

/// One field added to a message: package, message, field name and number (all `string`).
struct Addition {
    package: &'static str,
    message: &'static str,
    field: &'static str,
    number: i32,
}

/// The additions, each with the containerd release that sends it.
const ADDITIONS: &[Addition] = &[
    // containerd 2.2+ (API 1.10): `Commit` onto another parent (rebase), which its unpacker
    // sends when it unpacks layers in parallel onto a snapshotter declaring `rebase`.
    Addition {
        package: "containerd.services.snapshots.v1",
        message: "CommitSnapshotRequest",
        field: "parent",
        number: 5,
    },
];

/// `set` (an encoded descriptor set) with every addition whose message it holds and which it
/// lacks.
pub fn amend(set: &[u8]) -> Result<Vec<u8>, Error> {
    let mut set = FileDescriptorSet::decode(set)
        .map_err(|e| Error::Message(format!("decoding a pinned descriptor set: {e}")))?;
    for file in &mut set.file {
        let package = file.package().to_owned();
        for addition in ADDITIONS.iter().filter(|a| package == a.package) {
            let Some(message) = file
                .message_type
                .iter_mut()
                .find(|m| m.name() == addition.message)
            else {
                continue;
            };
            if message.field.iter().any(|f| f.number() == addition.number) {
                continue;
            }
            message.field.push(FieldDescriptorProto {
                name: Some(addition.field.to_owned()),
                number: Some(addition.number),
                label: Some(Label::Optional as i32),
                r#type: Some(Type::String as i32),
                json_name: Some(addition.field.to_owned()),
                ..FieldDescriptorProto::default()
            });
        }
    }
    Ok(set.encode_to_vec())
}
