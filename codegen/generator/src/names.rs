//! Rust names for proto names, following the conventions prost applies to what it emits.

use heck::{ToSnakeCase, ToUpperCamelCase};

/// Words that cannot be plain identifiers.
const KEYWORDS: &[&str] = &[
    "as", "async", "await", "abstract", "become", "box", "break", "const", "continue", "do", "dyn",
    "else", "enum", "false", "final", "fn", "for", "gen", "if", "impl", "in", "let", "loop",
    "macro", "match", "mod", "move", "mut", "override", "priv", "pub", "ref", "return", "static",
    "struct", "trait", "true", "try", "type", "typeof", "unsafe", "unsized", "use", "virtual",
    "where", "while", "yield",
];

/// Makes `word` usable as an identifier: raw for keywords, suffixed for the few words a raw
/// identifier cannot hold, prefixed when it starts with a digit.
pub fn escape(word: &str) -> String {
    if KEYWORDS.contains(&word) {
        format!("r#{word}")
    } else if matches!(word, "_" | "self" | "Self" | "super" | "crate" | "extern") {
        format!("{word}_")
    } else if word.starts_with(|c: char| c.is_ascii_digit()) {
        format!("_{word}")
    } else {
        word.to_owned()
    }
}

/// Module or function name for a proto name.
pub fn snake(name: &str) -> String {
    escape(&name.to_snake_case())
}

/// Type name for a proto name.
pub fn camel(name: &str) -> String {
    escape(&name.to_upper_camel_case())
}

/// Module path (from the crate root) of a proto package, such as `containerd::types`.
pub fn package_path(package: &str) -> Vec<String> {
    package
        .split('.')
        .filter(|p| !p.is_empty())
        .map(snake)
        .collect()
}

/// Path of a message or enum relative to its package module: nested types live in a module
/// named after their parent (`Outer.Inner` becomes `outer::Inner`).
pub fn type_path_in_package(relative_name: &str) -> String {
    let parts: Vec<&str> = relative_name.split('.').collect();
    let (last, parents) = parts.split_last().unwrap_or((&"", &[]));
    let mut path: Vec<String> = parents.iter().map(|p| snake(p)).collect();
    path.push(camel(last));
    path.join("::")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_prost() {
        assert_eq!(snake("Type"), "r#type");
        assert_eq!(snake("ContainerCreate"), "container_create");
        assert_eq!(camel("CPUStat"), "CpuStat");
        assert_eq!(camel("Self"), "Self_");
        assert_eq!(
            type_path_in_package("ContainerCreate.Runtime"),
            "container_create::Runtime"
        );
        assert_eq!(
            package_path("io.containerd.cgroups.v1"),
            ["io", "containerd", "cgroups", "v1"]
        );
    }
}
