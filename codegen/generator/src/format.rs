//! Formatting of generated Rust: one formatter (prettyplease) so output is the same bytes on every
//! machine, whatever rustfmt is installed.

use std::path::Path;

use syn::visit_mut::{self, VisitMut};

use crate::Error;

/// Prefixes of the one-line docs the generator attaches to protobuf items.
const PROTO_DOC_PREFIXES: &[&str] = &["Message `", "Enum `", "Field `", "Oneof `", "Value `"];

/// Parses and pretty-prints `code`, with `header` as its first line.
pub fn rust(file: &Path, header: &str, code: &str) -> Result<String, Error> {
    let mut parsed = syn::parse_file(code).map_err(|error| Error::Parse {
        file: file.to_owned(),
        error,
    })?;
    KeepMostSpecificDoc.visit_file_mut(&mut parsed);
    Ok(format!("{header}\n{}", prettyplease::unparse(&parsed)))
}

/// Keeps, of several generated proto docs on one item, only the last (the most specific one).
struct KeepMostSpecificDoc;

impl KeepMostSpecificDoc {
    fn dedupe(attrs: &mut Vec<syn::Attribute>) {
        let ours: Vec<usize> = attrs
            .iter()
            .enumerate()
            .filter(|(_, a)| is_proto_doc(a))
            .map(|(i, _)| i)
            .collect();
        if let Some((&keep, _)) = ours.split_last() {
            let mut index = 0;
            attrs.retain(|_| {
                let retain = index == keep || !ours.contains(&index);
                index += 1;
                retain
            });
        }
    }
}

fn is_proto_doc(attr: &syn::Attribute) -> bool {
    if !attr.path().is_ident("doc") {
        return false;
    }
    let syn::Meta::NameValue(nv) = &attr.meta else {
        return false;
    };
    let syn::Expr::Lit(syn::ExprLit {
        lit: syn::Lit::Str(s),
        ..
    }) = &nv.value
    else {
        return false;
    };
    let text = s.value();
    let text = text.trim_start();
    PROTO_DOC_PREFIXES.iter().any(|p| text.starts_with(p))
}

impl VisitMut for KeepMostSpecificDoc {
    fn visit_item_struct_mut(&mut self, node: &mut syn::ItemStruct) {
        Self::dedupe(&mut node.attrs);
        visit_mut::visit_item_struct_mut(self, node);
    }

    fn visit_item_enum_mut(&mut self, node: &mut syn::ItemEnum) {
        Self::dedupe(&mut node.attrs);
        visit_mut::visit_item_enum_mut(self, node);
    }

    fn visit_field_mut(&mut self, node: &mut syn::Field) {
        Self::dedupe(&mut node.attrs);
        visit_mut::visit_field_mut(self, node);
    }

    fn visit_variant_mut(&mut self, node: &mut syn::Variant) {
        Self::dedupe(&mut node.attrs);
        visit_mut::visit_variant_mut(self, node);
    }
}
