//! prost messages (and, through [`Services`], the services) of every package.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use prost_build::Module;
use prost_types::{DescriptorProto, EnumDescriptorProto, FileDescriptorSet};

use crate::Error;
use crate::services::Services;

/// Packages prost maps to `prost_types` rather than generating.
const EXTERN_PACKAGES: &[&str] = &["google.protobuf"];

/// Runs prost over every file of `fds` and returns the code of each package.
pub fn generate(fds: &FileDescriptorSet) -> Result<BTreeMap<String, String>, Error> {
    let errors = Rc::new(RefCell::new(Vec::new()));
    let mut config = prost_build::Config::new();
    config.service_generator(Box::new(Services::new(errors.clone())));
    for file in &fds.file {
        add_docs(
            &mut config,
            file.package(),
            &file.message_type,
            &file.enum_type,
        );
    }
    // Well-known types go in too, so prost can see their shape; it emits nothing for them, as
    // they resolve to `prost_types`.
    let requests = fds
        .file
        .iter()
        .map(|f| (Module::from_protobuf_package_name(f.package()), f.clone()))
        .collect();
    let modules = config.generate(requests).map_err(Error::Prost)?;
    if let Some(e) = errors.borrow_mut().drain(..).next() {
        return Err(e);
    }
    Ok(modules
        .into_iter()
        .filter(|(module, _)| {
            !EXTERN_PACKAGES.contains(&module.parts().collect::<Vec<_>>().join(".").as_str())
        })
        .map(|(module, code)| (module.parts().collect::<Vec<_>>().join("."), code))
        .collect())
}

/// Gives every message, enum, field, oneof and enum value a one-line doc naming its proto.
///
/// prost matches attribute paths by prefix too, so a nested type also receives its parents'
/// docs; parents are registered first, and [`crate::format`] keeps only the last doc line.
fn add_docs(
    config: &mut prost_build::Config,
    scope: &str,
    messages: &[DescriptorProto],
    enums: &[EnumDescriptorProto],
) {
    for message in messages {
        let name = format!("{scope}.{}", message.name());
        config.type_attribute(format!(".{name}"), doc(&format!("Message `{name}`.")));
        for field in &message.field {
            let path = format!("{name}.{}", field.name());
            config.field_attribute(format!(".{path}"), doc(&format!("Field `{path}`.")));
        }
        for oneof in &message.oneof_decl {
            let path = format!("{name}.{}", oneof.name());
            config.type_attribute(format!(".{path}"), doc(&format!("Oneof `{path}`.")));
        }
        add_docs(config, &name, &message.nested_type, &message.enum_type);
    }
    for e in enums {
        let name = format!("{scope}.{}", e.name());
        config.type_attribute(format!(".{name}"), doc(&format!("Enum `{name}`.")));
        for value in &e.value {
            let path = format!("{name}.{}", value.name());
            config.field_attribute(format!(".{path}"), doc(&format!("Value `{path}`.")));
        }
    }
}

fn doc(text: &str) -> String {
    format!("#[doc = {:?}]", format!(" {text}"))
}
