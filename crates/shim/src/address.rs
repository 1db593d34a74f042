//! Where a serving shim listens.

use sha2::{Digest, Sha256};

/// Folder the sockets live in, as containerd's own shims use it.
pub const SOCKET_DIR: &str = "/run/containerd/s";

/// The socket address of the shim serving group `id` in `namespace` for the containerd at
/// `grpc_address`: `unix:///run/containerd/s/<sha256 of "address/namespace/id">`, the scheme
/// containerd's Go shims use, so both kinds of shim agree and never collide across daemons.
pub fn socket_address(grpc_address: &str, namespace: &str, id: &str) -> String {
    socket_address_in(SOCKET_DIR, grpc_address, namespace, id)
}

/// [`socket_address`] under another folder: containerd 2.4 and later let operators choose it
/// (`socket_dir` of the `io.containerd.shim.v1.manager` plugin) and send it to `start` in the
/// bootstrap parameters.
pub fn socket_address_in(dir: &str, grpc_address: &str, namespace: &str, id: &str) -> String {
    let joined = clean_join(&[grpc_address, namespace, id]);
    let digest = Sha256::digest(joined.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("unix://{}/{hex}", dir.trim_end_matches('/'))
}

/// The path of a `unix://` address.
pub fn socket_path(address: &str) -> &str {
    address.strip_prefix("unix://").unwrap_or(address)
}

/// Joins path parts and cleans the result the way Go's `filepath.Join` does (no empty, `.`
/// or repeated separators; `..` removes the previous part).
fn clean_join(parts: &[&str]) -> String {
    let joined = parts
        .iter()
        .filter(|p| !p.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join("/");
    let absolute = joined.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for part in joined.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if out.last().is_some_and(|p| *p != "..") {
                    out.pop();
                } else if !absolute {
                    out.push("..");
                }
            }
            p => out.push(p),
        }
    }
    let body = out.join("/");
    if absolute { format!("/{body}") } else { body }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_containerds_go_shims() {
        // What Debian's Go shim (containerd 2.1.9) printed for this daemon address and id.
        assert_eq!(
            socket_address("/tmp/ctrd-probe-FEvD/c.sock", "default", "probe"),
            "unix:///run/containerd/s/48eb16a8507b4e4b76b7e9d924de86aa19bfdbb92c7f6f4ee190b419715a92e6"
        );
        assert_eq!(clean_join(&["/a//b/", "ns", "id"]), "/a/b/ns/id");
        assert_eq!(clean_join(&["/a/./b/../c", "ns", "id"]), "/a/c/ns/id");
        assert_eq!(socket_path("unix:///x/y"), "/x/y");
        assert_eq!(
            socket_address_in("/tmp/s/", "/tmp/ctrd-probe-FEvD/c.sock", "default", "probe"),
            "unix:///tmp/s/48eb16a8507b4e4b76b7e9d924de86aa19bfdbb92c7f6f4ee190b419715a92e6"
        );
    }
}
