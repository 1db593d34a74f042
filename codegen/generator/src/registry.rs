//! Type URLs of every message and topics of every event, emitted as trait impls.

use std::collections::BTreeMap;
use std::fmt::Write;

use prost_types::{DescriptorProto, FileDescriptorSet};

use crate::{names, spec};

/// `TypeUrl` (and, for events, `Event`) impls for the messages of each package.
pub fn generate(fds: &FileDescriptorSet) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for file in &fds.file {
        if file.package() == "google.protobuf" {
            continue;
        }
        let code = out.entry(file.package().to_owned()).or_default();
        impls(code, file.package(), "", &file.message_type);
    }
    out
}

fn impls(code: &mut String, package: &str, parent: &str, messages: &[DescriptorProto]) {
    for message in messages {
        if message.options.as_ref().is_some_and(|o| o.map_entry()) {
            continue;
        }
        let relative = if parent.is_empty() {
            message.name().to_owned()
        } else {
            format!("{parent}.{}", message.name())
        };
        let full = format!("{package}.{relative}");
        let ty = names::type_path_in_package(&relative);
        let _ = writeln!(
            code,
            "impl crate::TypeUrl for {ty} {{ const TYPE_URL: &'static str = {full:?}; }}"
        );
        if let Some(topic) = spec::topic(&full) {
            let _ = writeln!(
                code,
                "impl crate::Event for {ty} {{ const TOPIC: &'static str = {topic:?}; }}"
            );
        }
        impls(code, package, &relative, &message.nested_type);
    }
}
