//! What the shim refuses before it acts on a request: every field that becomes a path, a mount,
//! a process or a runc argument is checked here, so a hostile or broken request gets one clear
//! `INVALID_ARGUMENT` and nothing is made for it.
//!
//! | field | refused |
//! |---|---|
//! | container id | not a containerd identifier (empty, over 76 bytes, `/`, `..`, NUL, control, non-ASCII, leading/trailing/doubled `.` `_` `-`) |
//! | exec id | the same rule (containerd checks exec ids with it too) |
//! | bundle, checkpoint paths | relative, `.` or `..` components, NUL, over 4096 bytes |
//! | rootfs mount | empty or odd type, NUL or control characters in type, source, target or an option, a target with `..`, options over 1 MiB |
//! | stdio | a scheme other than `file://`, `binary://`, `binary-v2://`; a relative path; NUL |
//! | runc options (`Any`) | a `containerd.runc.v1.Options` that does not decode |
//! | signal (`Kill`) | 0 or above 64 |
//! | exec spec, `Update` resources | not a JSON object (runc checks the fields) |

use ctrd_api::TypeUrl;
use ctrd_api::containerd::runc::v1::Options;
use ctrd_api::containerd::task::v2::{CreateTaskRequest, ExecProcessRequest};
use ctrd_api::containerd::types::Mount;
use ctrd_api::prost_types::Any;

use crate::error::Error;

/// The longest path accepted (Linux's `PATH_MAX`).
pub const MAX_PATH: usize = 4096;
/// The most bytes of mount options accepted for one mount.
pub const MAX_MOUNT_OPTIONS: usize = 1 << 20;

/// Checks a `Create` request.
pub fn create(req: &CreateTaskRequest) -> Result<(), Error> {
    container_id(&req.id)?;
    path("bundle", &req.bundle)?;
    for mount in &req.rootfs {
        self::mount(mount)?;
    }
    stdio(&req.stdin, &req.stdout, &req.stderr)?;
    for (what, value) in [
        ("checkpoint", &req.checkpoint),
        ("parent checkpoint", &req.parent_checkpoint),
    ] {
        if !value.is_empty() {
            path(what, value)?;
        }
    }
    runc_options(req.options.as_ref())
}

/// Checks an `Exec` request.
pub fn exec(req: &ExecProcessRequest) -> Result<(), Error> {
    container_id(&req.id)?;
    identifier("exec id", &req.exec_id)?;
    stdio(&req.stdin, &req.stdout, &req.stderr)?;
    if req.spec.is_none() {
        return Err(Error::invalid("exec", "it needs a process spec"));
    }
    Ok(())
}

/// Checks a container id as containerd does.
pub fn container_id(id: &str) -> Result<(), Error> {
    identifier("container id", id)
}

/// Checks `value` against containerd's identifier rule (containerd 1.6 to 2.4 check container
/// and exec ids with it before any reaches a shim).
fn identifier(what: &'static str, value: &str) -> Result<(), Error> {
    ctrd_shim::identifier::problem(value).map_or(Ok(()), |reason| {
        Err(Error::invalid(
            what,
            format!("{} is refused: {reason}", quoted(value)),
        ))
    })
}

/// Checks an absolute path from a request.
pub fn path(what: &'static str, value: &str) -> Result<(), Error> {
    let reason = if value.len() > MAX_PATH {
        "is longer than 4096 bytes"
    } else if value.contains('\0') {
        "holds a NUL byte"
    } else if !value.starts_with('/') {
        "must be absolute"
    } else if value.split('/').any(|part| part == "." || part == "..") {
        "must not hold '.' or '..' parts"
    } else {
        return Ok(());
    };
    Err(Error::invalid(what, format!("{} {reason}", quoted(value))))
}

/// Checks one root filesystem mount.
pub fn mount(mount: &Mount) -> Result<(), Error> {
    let bad = |reason: String| Err(Error::invalid("rootfs mount", reason));
    if mount.r#type.is_empty()
        || !mount
            .r#type
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return bad(format!(
            "type {} must be a filesystem name",
            quoted(&mount.r#type)
        ));
    }
    for (what, value) in [("source", &mount.source), ("target", &mount.target)] {
        if has_control(value) {
            return bad(format!(
                "{what} {} holds a NUL or control character",
                quoted(value)
            ));
        }
    }
    if mount.target.split('/').any(|part| part == "..") {
        return bad(format!(
            "target {} must stay inside the root filesystem (no '..')",
            quoted(&mount.target)
        ));
    }
    let mut total = 0;
    for option in &mount.options {
        if has_control(option) {
            return bad(format!(
                "option {} holds a NUL or control character",
                quoted(option)
            ));
        }
        total += option.len() + 1;
    }
    if total > MAX_MOUNT_OPTIONS {
        return bad(format!(
            "its options are {total} bytes; at most {MAX_MOUNT_OPTIONS} are accepted"
        ));
    }
    Ok(())
}

/// Checks the stdio of a process: each empty, a FIFO's absolute path, `file://PATH`, or (for
/// stdout, naming a log driver) `binary://PATH?QUERY` or `binary-v2://PATH?QUERY`.
pub fn stdio(stdin: &str, stdout: &str, stderr: &str) -> Result<(), Error> {
    if !stdin.is_empty() {
        path("stdin", stdin)?;
    }
    for (what, value) in [("stdout", stdout), ("stderr", stderr)] {
        if value.is_empty() {
            continue;
        }
        if let Some(file) = value.strip_prefix("file://") {
            path(what, file)?;
        } else if let Some(uri) = value
            .strip_prefix("binary://")
            .or_else(|| value.strip_prefix("binary-v2://"))
        {
            let (program, args) = crate::stdio::driver_command(uri);
            path(what, &program)?;
            if args.iter().any(|a| a.contains('\0')) {
                return Err(Error::invalid(
                    what,
                    format!("{} holds a NUL byte in its query", quoted(value)),
                ));
            }
        } else if let Some((scheme, _)) = value.split_once("://") {
            return Err(Error::invalid(
                what,
                format!(
                    "URI scheme {} is not supported (use a FIFO path, file://, binary:// or binary-v2://)",
                    quoted(scheme)
                ),
            ));
        } else {
            path(what, value)?;
        }
    }
    Ok(())
}

/// Checks a JSON document runc is handed (an exec's process spec, `Update`'s resources): it
/// must be a JSON object; runc checks its fields, as it does for the Go shim, whose typed
/// decoding accepts unknown and missing fields alike. Not decoding it into the typed OCI spec
/// keeps that spec's deserializers (and the regex engine one of them needs) out of the shim's
/// binary, which is most of what the shim would otherwise map but never run.
pub fn json_object(
    what: &'static str,
    value: &[u8],
) -> Result<serde_json::Map<String, serde_json::Value>, Error> {
    match serde_json::from_slice(value) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        Ok(_) => Err(Error::invalid(what, "not a JSON object")),
        Err(e) => Err(Error::invalid(what, e)),
    }
}

/// The highest signal number Linux has (`SIGRTMAX`).
pub const MAX_SIGNAL: u32 = 64;

/// Checks a signal number of `Kill`: 1 to [`MAX_SIGNAL`]; returns it as runc takes it.
pub fn signal(number: u32) -> Result<i32, Error> {
    match i32::try_from(number) {
        Ok(signal) if (1..=MAX_SIGNAL).contains(&number) => Ok(signal),
        _ => Err(Error::invalid(
            "signal",
            format!("{number} is not a signal (1 to {MAX_SIGNAL})"),
        )),
    }
}

/// Checks the runtime options: runc's own must decode; other types (CRI's) are ignored.
pub fn runc_options(any: Option<&Any>) -> Result<(), Error> {
    match any {
        Some(any) if any.type_url.ends_with(Options::TYPE_URL) => Options::from_any(any)
            .map(drop)
            .map_err(|e| Error::invalid("runc options", e)),
        _ => Ok(()),
    }
}

fn has_control(value: &str) -> bool {
    value.chars().any(char::is_control)
}

/// `value` for an error message: escaped, and cut at 100 characters.
fn quoted(value: &str) -> String {
    let mut text: String = value.escape_debug().take(100).collect();
    if text.len() < value.len() {
        text.push_str("...");
    }
    format!("\"{text}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_objects() {
        let spec = br#"{"args":["/bin/true"],"cwd":"/","x-unknown":1}"#;
        let map = json_object("exec spec", spec).expect("an object is taken");
        assert!(map.contains_key("x-unknown"), "unknown fields reach runc");
        for bad in [&b"[]"[..], b"\"text\"", b"{", b""] {
            let err = json_object("exec spec", bad).expect_err("refused");
            assert!(err.to_string().contains("exec spec"), "{err}");
        }
    }

    #[test]
    fn paths() {
        assert!(path("bundle", "/run/containerd/x/default/c1").is_ok());
        for bad in ["", "relative", "/a/../b", "/a/./b", "/a\0b"] {
            assert!(path("bundle", bad).is_err(), "{bad:?}");
        }
        assert!(path("bundle", &format!("/{}", "a".repeat(4096))).is_err());
    }

    #[test]
    fn mounts() {
        let ok = Mount {
            r#type: "overlay".into(),
            source: "overlay".into(),
            target: String::new(),
            options: vec!["lowerdir=/a:/b".into(), "upperdir=/c".into()],
        };
        assert!(mount(&ok).is_ok());
        let escape = Mount {
            target: "../../etc".into(),
            ..ok.clone()
        };
        assert!(mount(&escape).is_err());
        let nul = Mount {
            options: vec!["lowerdir=/a\0".into()],
            ..ok.clone()
        };
        assert!(mount(&nul).is_err());
        let odd_type = Mount {
            r#type: "over lay".into(),
            ..ok.clone()
        };
        assert!(mount(&odd_type).is_err());
        let huge = Mount {
            options: vec!["x".repeat(MAX_MOUNT_OPTIONS + 1)],
            ..ok
        };
        assert!(mount(&huge).is_err());
    }

    #[test]
    fn stdio_uris() {
        assert!(
            stdio(
                "/run/x/stdin",
                "file:///var/log/c1",
                "binary:///bin/driver?a=b"
            )
            .is_ok()
        );
        assert!(stdio("", "binary-v2:///bin/driver", "").is_ok());
        for (stdin, stdout) in [
            ("relative", ""),
            ("", "http://example.invalid/x"),
            ("", "file://relative"),
            ("", "binary://relative?x=y"),
            ("", "binary:///bin/d?k=%00"),
            ("", "/a/../b"),
        ] {
            assert!(stdio(stdin, stdout, "").is_err(), "{stdin:?} {stdout:?}");
        }
    }

    #[test]
    fn malformed_runc_options_are_refused() {
        let any = Any {
            type_url: format!("type.googleapis.com/{}", Options::TYPE_URL),
            value: vec![0xff, 0xff, 0xff],
        };
        assert!(runc_options(Some(&any)).is_err());
        let other = Any {
            type_url: "runtimeoptions.v1.Options".into(),
            value: vec![0xff],
        };
        assert!(runc_options(Some(&other)).is_ok());
    }
}
