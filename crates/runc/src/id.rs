//! Container ids, checked before they reach runc or a path.

use crate::Error;

/// Checks `id` the way runc does, and refuses anything that could name another folder.
pub fn validate(id: &str) -> Result<(), Error> {
    let reason = if id.is_empty() {
        "it is empty"
    } else if id == "." || id == ".." {
        "it names a folder"
    } else if id.len() > 1024 {
        "it is longer than 1024 bytes"
    } else if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'+' | b'-' | b'.'))
    {
        "use only letters, digits, '_', '+', '-' and '.'"
    } else {
        return Ok(());
    };
    Err(Error::InvalidId {
        id: id.to_owned(),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::validate;

    #[test]
    fn ids() {
        for ok in ["c1", "a.b", "x_y-z+1", "0"] {
            assert!(validate(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", "a/b", "../x", "a b", "é", "a\0b"] {
            assert!(validate(bad).is_err(), "{bad:?}");
        }
    }
}
