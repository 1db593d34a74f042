//! The `start` action run by hand as containerd runs it: the address it prints for each
//! containerd generation, reuse of a group's shim, an owner-only socket that refuses other
//! users, and SIGTERM shutting the shim down with its socket removed.

mod common;

use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{ShimBin, eventually, shims};
use ctrd_api::containerd::runtime::bootstrap::v1::{BootstrapParams, BootstrapResult};
use ctrd_api::containerd::task::v2::{ConnectRequest, task_ttrpc_async};
use ctrd_api::prost::Message;
use ctrd_api::ttrpc;
use ctrd_shim::socket_address;

struct FakeDaemon {
    dir: tempfile::TempDir,
}

impl FakeDaemon {
    /// A state folder laid out as containerd's, with a 2.x marker if asked.
    fn new(v2_marker: bool) -> FakeDaemon {
        let dir = tempfile::Builder::new()
            .prefix("ctrd-fake-")
            .tempdir()
            .expect("tempdir");
        if v2_marker {
            std::fs::create_dir_all(
                dir.path()
                    .join("state/io.containerd.sandbox.controller.v1.shim"),
            )
            .expect("marker");
        }
        FakeDaemon { dir }
    }

    fn address(&self) -> String {
        self.dir.path().join("c.sock").display().to_string()
    }

    fn bundle(&self, id: &str, group: Option<&str>) -> std::path::PathBuf {
        let bundle = self
            .dir
            .path()
            .join("state/io.containerd.runtime.v2.task/ns")
            .join(id);
        std::fs::create_dir_all(&bundle).expect("bundle");
        let annotations = group
            .map(|g| serde_json::json!({ "io.containerd.runc.v2.group": g }))
            .unwrap_or_else(|| serde_json::json!({}));
        std::fs::write(
            bundle.join("config.json"),
            serde_json::json!({ "ociVersion": "1.0.2", "annotations": annotations }).to_string(),
        )
        .expect("spec");
        bundle
    }

    /// Runs `start` for `id` in its bundle and returns stdout.
    fn start(
        &self,
        bin: &ShimBin,
        id: &str,
        bundle: &Path,
        env: &[(&str, &str)],
        stdin: &[u8],
    ) -> Vec<u8> {
        let mut child = Command::new(bin.path())
            .args(["-namespace", "ns", "-id", id, "-address", &self.address()])
            .args(["-publish-binary", "/bin/true", "start"])
            .current_dir(bundle)
            .env_remove("MAX_SHIM_VERSION")
            .env("TTRPC_ADDRESS", self.dir.path().join("c.sock.ttrpc"))
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin)
            .expect("write stdin");
        let out = child.wait_with_output().expect("wait");
        assert!(
            out.status.success(),
            "start failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }
}

impl Drop for FakeDaemon {
    /// Stops any shim a failed assertion left running (SIGTERM first, so it removes its socket).
    fn drop(&mut self) {
        for signal in [
            nix::sys::signal::Signal::SIGTERM,
            nix::sys::signal::Signal::SIGKILL,
        ] {
            let pids = shims(&self.address());
            if pids.is_empty() {
                return;
            }
            for pid in pids {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

async fn shim_pid(address: &str) -> ttrpc::Result<u32> {
    let client = task_ttrpc_async::TaskClient::new(ttrpc::r#async::Client::connect(address).await?);
    let reply = client
        .connect(
            ttrpc::context::with_duration(Duration::from_secs(3)),
            &ConnectRequest { id: "c1".into() },
        )
        .await?;
    Ok(reply.shim_pid)
}

/// Environment variable that turns this test binary into the unprivileged client below.
const HELPER_SOCKET: &str = "CTRD_TEST_CONNECT_AS_NOBODY";

/// Connects to `path` as uid/gid 65534 (this test binary re-run as the helper test) and says
/// what happened: `denied` (connect failed), `closed` (the shim hung up) or `open`.
fn connect_as_nobody(path: &Path) -> String {
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe().expect("test binary");
    let out = Command::new(exe)
        .args([
            "--exact",
            "unprivileged_client",
            "--include-ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(HELPER_SOCKET, path)
        .uid(65534)
        .gid(65534)
        .current_dir("/")
        .output()
        .expect("helper");
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout
        .lines()
        .find_map(|l| l.split_once("RESULT=").map(|(_, r)| r.trim()))
        .unwrap_or_else(|| {
            panic!(
                "helper said nothing: {stdout} {}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
        .to_owned()
}

/// Not a test on its own: the client [`connect_as_nobody`] runs as another user.
#[test]
#[ignore = "helper, run by start_replies_reuses_refuses_and_stops"]
fn unprivileged_client() {
    use std::io::Read;
    let Some(path) = std::env::var_os(HELPER_SOCKET) else {
        return;
    };
    let result = match std::os::unix::net::UnixStream::connect(&path) {
        Err(_) => "denied",
        Ok(mut stream) => {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
            match stream.read(&mut [0u8; 16]) {
                Ok(0) => "closed",
                _ => "open",
            }
        }
    };
    println!("RESULT={result}");
}

#[tokio::test(flavor = "current_thread")]
async fn start_replies_reuses_refuses_and_stops() {
    ctrd_testbed::require_root().unwrap_or_else(|e| panic!("{e}"));
    let bin = ShimBin::new();

    // containerd 1.6: plain address; the socket is the one Go's shims would use.
    let daemon = FakeDaemon::new(false);
    let bundle = daemon.bundle("c1", Some("grp"));
    let out = daemon.start(&bin, "c1", &bundle, &[], b"");
    let address = String::from_utf8(out).expect("utf8");
    assert_eq!(address, socket_address(&daemon.address(), "ns", "grp"));
    let path = Path::new(address.trim_start_matches("unix://")).to_owned();
    let meta = std::fs::metadata(&path).expect("socket");
    assert_eq!((meta.permissions().mode() & 0o777, meta.uid()), (0o600, 0));
    assert_eq!(
        std::fs::read_to_string(bundle.join("address")).expect("address file"),
        address
    );
    let pid = shim_pid(&address).await.expect("connect");

    // Same group: the running shim is reused.
    let bundle2 = daemon.bundle("c2", Some("grp"));
    let again = daemon.start(&bin, "c2", &bundle2, &[], b"");
    assert_eq!(String::from_utf8(again).expect("utf8"), address);
    assert_eq!(shims(&daemon.address()).len(), 1, "no second shim");

    // Another user cannot connect: the socket file is 0600; and with the file opened up,
    // the shim itself refuses the connection.
    assert_eq!(
        connect_as_nobody(&path),
        "denied",
        "the 0600 socket keeps uid 65534 out"
    );
    // Past the file permissions (a world-writable hard link in a traversable folder on the same
    // filesystem), the shim itself checks the peer's uid and hangs up.
    let open_dir = tempfile::Builder::new()
        .prefix("ctrd-test-")
        .tempdir_in("/run")
        .expect("tempdir");
    std::fs::set_permissions(open_dir.path(), std::fs::Permissions::from_mode(0o755))
        .expect("chmod dir");
    let link = open_dir.path().join("sock");
    std::fs::hard_link(&path, &link).expect("link");
    std::fs::set_permissions(&link, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    assert_eq!(
        connect_as_nobody(&link),
        "closed",
        "the shim hangs up on uid 65534"
    );
    std::fs::set_permissions(&link, std::fs::Permissions::from_mode(0o600)).expect("chmod back");
    drop(open_dir);
    assert_eq!(shim_pid(&address).await.expect("owner still served"), pid);

    // SIGTERM: the shim exits and removes its socket.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("SIGTERM");
    eventually("the shim exits on SIGTERM", || {
        shims(&daemon.address()).is_empty()
    });
    eventually("its socket is removed", || !path.exists());

    // containerd 2.x (legacy input, 2.x state layout): JSON announcing task API v3.
    let daemon2 = FakeDaemon::new(true);
    let bundle = daemon2.bundle("c1", None);
    let out = daemon2.start(&bin, "c1", &bundle, &[("MAX_SHIM_VERSION", "2")], b"");
    let json: serde_json::Value = serde_json::from_slice(&out).expect("json reply");
    assert_eq!(json["version"], 3);
    assert_eq!(json["protocol"], "ttrpc");
    let address2 = json["address"].as_str().expect("address").to_owned();
    let pid2 = shim_pid(&address2).await.expect("connect v3 shim");

    // containerd 1.7 (legacy input, 1.x layout): JSON with version 2.
    let daemon3 = FakeDaemon::new(false);
    let bundle = daemon3.bundle("c1", None);
    let out = daemon3.start(&bin, "c1", &bundle, &[("MAX_SHIM_VERSION", "2")], b"");
    let json: serde_json::Value = serde_json::from_slice(&out).expect("json reply");
    assert_eq!(json["version"], 2);
    let pid3 = shim_pid(json["address"].as_str().expect("address"))
        .await
        .expect("connect");

    // containerd 2.3+: BootstrapParams on stdin, BootstrapResult back.
    let daemon4 = FakeDaemon::new(true);
    let bundle = daemon4.bundle("c1", None);
    let params = BootstrapParams {
        instance_id: "c1".into(),
        namespace: "ns".into(),
        containerd_version: "2.3.0".into(),
        containerd_grpc_address: daemon4.address(),
        containerd_ttrpc_address: format!("{}.ttrpc", daemon4.address()),
        ..Default::default()
    };
    let out = daemon4.start(
        &bin,
        "c1",
        &bundle,
        &[("MAX_SHIM_VERSION", "2")],
        &params.encode_to_vec(),
    );
    let result = BootstrapResult::decode(out.as_slice()).expect("protobuf reply");
    assert_eq!((result.version, result.protocol.as_str()), (3, "ttrpc"));
    let pid4 = shim_pid(&result.address).await.expect("connect");

    for p in [pid2, pid3, pid4] {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(p as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
    for d in [&daemon2, &daemon3, &daemon4] {
        eventually("shims exit", || shims(&d.address()).is_empty());
    }
}
