//! What the snapshotter refuses: keys with NUL or control characters, or over 4096 bytes, get
//! `InvalidKey` and record nothing; the served socket is 0600 and the server hangs up on any
//! other uid even past the file's mode.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::sync::Arc;

use ctrd_snapshots::{
    Error, Filter, Info, Kind, Labels, Listener, MetaStore, Mount, Result, Snapshotter, Usage,
};
use ctrd_testbed::access::{Access, NOBODY, connect_as};

#[test]
fn hostile_keys_record_nothing() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let store = MetaStore::open(&dir.path().join("metadata.redb")).expect("open store");
    let long = "k".repeat(4097);
    for key in ["", "a\0b", "a\nb", "tab\tkey", "\u{7f}", long.as_str()] {
        let result = store.create(Kind::Active, key, None, Labels::new(), |_| Ok(()));
        assert!(
            matches!(result, Err(Error::InvalidKey { .. })),
            "{key:?}: {result:?}"
        );
    }
    // containerd's own keys pass: namespaced, with slashes, colons and spaces.
    let key = "default/12/extract-123-abc sha256:0123";
    store
        .create(Kind::Active, key, None, Labels::new(), |_| Ok(()))
        .expect("containerd's key shape");
    let mut seen = Vec::new();
    store
        .walk(&Filter::all(), &mut |info| {
            seen.push(info.name);
            Ok(())
        })
        .expect("walk");
    assert_eq!(seen, vec![key.to_owned()], "only the good key was recorded");
}

/// A snapshotter that knows nothing: the socket is what is tested.
struct Empty;

fn not_found(key: &str) -> Error {
    Error::NotFound { key: key.into() }
}

impl Snapshotter for Empty {
    fn stat(&self, key: &str) -> Result<Info> {
        Err(not_found(key))
    }
    fn update(&self, info: Info, _: &[String]) -> Result<Info> {
        Err(not_found(&info.name))
    }
    fn usage(&self, key: &str) -> Result<Usage> {
        Err(not_found(key))
    }
    fn mounts(&self, key: &str) -> Result<Vec<Mount>> {
        Err(not_found(key))
    }
    fn prepare(&self, key: &str, _: Option<&str>, _: Labels) -> Result<Vec<Mount>> {
        Err(not_found(key))
    }
    fn view(&self, key: &str, _: Option<&str>, _: Labels) -> Result<Vec<Mount>> {
        Err(not_found(key))
    }
    fn commit(&self, _: &str, key: &str, _: Option<&str>, _: Labels) -> Result<()> {
        Err(not_found(key))
    }
    fn remove(&self, key: &str) -> Result<()> {
        Err(not_found(key))
    }
    fn walk(&self, _: &Filter, _: &mut dyn FnMut(Info) -> Result<()>) -> Result<()> {
        Ok(())
    }
    fn cleanup(&self) -> Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_socket_refuses_other_users() {
    ctrd_testbed::require_root().unwrap_or_else(|e| panic!("{e}"));
    // A folder anyone may enter, so only the socket's own mode and the server decide.
    let open_dir = tempfile::Builder::new()
        .prefix("ctrd-snap-open-")
        .tempdir_in("/run")
        .expect("tempdir");
    std::fs::set_permissions(open_dir.path(), std::fs::Permissions::from_mode(0o755))
        .expect("chmod");
    let path = open_dir.path().join("snapshotter.sock");
    let listener = Listener::bind(&path).expect("bind");
    let meta = std::fs::metadata(&path).expect("socket");
    assert_eq!((meta.permissions().mode() & 0o777, meta.uid()), (0o600, 0));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(ctrd_snapshots::serve_until(
        listener,
        Arc::new(Empty),
        async move {
            let _ = stopped.await;
        },
    ));

    let socket = path.clone();
    let access = tokio::task::spawn_blocking(move || connect_as(&socket, NOBODY, NOBODY))
        .await
        .expect("join")
        .expect("connect as nobody");
    assert_eq!(
        access,
        Access::Denied,
        "the 0600 socket keeps uid 65534 out"
    );

    // Past the mode (a world-writable hard link), the server itself hangs up.
    let link = open_dir.path().join("link.sock");
    std::fs::hard_link(&path, &link).expect("link");
    std::fs::set_permissions(&link, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    let access = tokio::task::spawn_blocking(move || connect_as(&link, NOBODY, NOBODY))
        .await
        .expect("join")
        .expect("connect as nobody");
    assert_eq!(access, Access::Closed, "the server hangs up on uid 65534");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod back");

    let _ = stop.send(());
    server.await.expect("join").expect("served");
    assert!(!path.exists(), "the socket is removed when serving ends");
}
