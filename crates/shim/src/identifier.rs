//! containerd's identifiers (namespaces, container ids): checked here as containerd's own
//! `identifiers` package checks them, so a shim never builds a path or a socket address from a
//! name containerd itself would have refused.
//!
//! The rule: 1 to 76 bytes, runs of ASCII letters and digits joined by single `.`, `_` or `-`
//! (no leading, trailing or doubled separator). So no `/`, no `..`, no NUL, no control or
//! non-ASCII character can pass.

use crate::Error;

/// The longest identifier containerd accepts, in bytes.
pub const MAX_IDENTIFIER: usize = 76;

/// Why `id` is not a containerd identifier, or `None` if it is one.
pub fn problem(id: &str) -> Option<&'static str> {
    if id.is_empty() {
        return Some("it is empty");
    }
    if id.len() > MAX_IDENTIFIER {
        return Some("it is longer than 76 bytes");
    }
    let mut after_separator = true;
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() {
            after_separator = false;
        } else if matches!(b, b'.' | b'_' | b'-') {
            if after_separator {
                return Some(
                    "a '.', '_' or '-' must stand between letters or digits (not first, not doubled)",
                );
            }
            after_separator = true;
        } else {
            return Some("use only ASCII letters, digits, '.', '_' and '-'");
        }
    }
    if after_separator {
        return Some("it ends with '.', '_' or '-'");
    }
    None
}

/// Checks `value`, the `what` of a request or command line (`"namespace"`, `"container id"`).
pub fn validate(what: &'static str, value: &str) -> Result<(), Error> {
    match problem(value) {
        None => Ok(()),
        Some(reason) => Err(Error::InvalidIdentifier {
            what,
            value: value.escape_debug().take(100).collect(),
            reason,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::problem;

    #[test]
    fn containerd_identifiers() {
        let longest = "a".repeat(76);
        for ok in [
            "c1",
            "a.b",
            "a_b-c.d",
            "0",
            "A9",
            "sha256",
            longest.as_str(),
        ] {
            assert_eq!(problem(ok), None, "{ok}");
        }
        let too_long = "a".repeat(77);
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "../x",
            "a..b",
            "-a",
            "a-",
            "a b",
            "é",
            "a\0b",
            "a\nb",
            "a+b",
            too_long.as_str(),
        ] {
            assert!(problem(bad).is_some(), "{bad:?}");
        }
    }
}
