//! Hostile and broken requests sent straight to our shim's socket, as any process that reached
//! it could send them: each gets one `INVALID_ARGUMENT` naming the field and why, and nothing is
//! made for it (no mount, no runc state, no file in the bundle, no process). A 16 MiB frame is
//! refused by the ttrpc layer without the shim holding it in memory, and the shim keeps
//! serving. Other users cannot reach the socket at all.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use ctrd_api::containerd::task::v2::{
    ConnectRequest, CreateTaskRequest, ExecProcessRequest, KillRequest, task_ttrpc_async,
};
use ctrd_api::containerd::types::Mount;
use ctrd_api::prost_types::Any;
use ctrd_api::ttrpc;
use ctrd_api::ttrpc::proto::{Code, Codec, Response};
use ctrd_testbed::ServedShim;
use ctrd_testbed::access::{Access, NOBODY, connect_as};

const SHIM: &str = env!("CARGO_BIN_EXE_containerd-shim-runc-v2");
const NAMESPACE: &str = "ctrd-hostile";

fn context() -> ttrpc::context::Context {
    ttrpc::context::with_duration(Duration::from_secs(10))
}

/// The status code and message of a failed call.
fn refusal<T: std::fmt::Debug>(result: ttrpc::Result<T>) -> (Code, String) {
    match result {
        Err(ttrpc::Error::RpcStatus(status)) => {
            (status.code.enum_value_or_default(), status.message.clone())
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// VmRSS of `pid`, in KiB.
fn rss_kib(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmRSS")
}

#[tokio::test(flavor = "current_thread")]
async fn hostile_requests_get_clear_errors_and_leave_nothing() {
    ctrd_testbed::require_root().unwrap_or_else(|e| panic!("{e}"));
    let shim = ServedShim::start(SHIM.as_ref(), NAMESPACE, "c1").unwrap_or_else(|e| panic!("{e}"));
    let bundle = shim.bundle();
    let bundle_text = bundle.display().to_string();
    let before: Vec<_> = std::fs::read_dir(&bundle)
        .expect("bundle")
        .map(|e| e.expect("entry").file_name())
        .collect();
    let client = task_ttrpc_async::TaskClient::new(
        ttrpc::r#async::Client::connect(shim.address())
            .await
            .expect("connect"),
    );

    let good = CreateTaskRequest {
        id: "c1".into(),
        bundle: bundle_text.clone(),
        ..Default::default()
    };
    let overlay = Mount {
        r#type: "overlay".into(),
        source: "overlay".into(),
        target: String::new(),
        options: vec!["lowerdir=/nonexistent".into()],
    };
    let cases: Vec<(&str, CreateTaskRequest, &str)> = vec![
        (
            "id with a slash",
            CreateTaskRequest {
                id: "../c1".into(),
                ..good.clone()
            },
            "container id",
        ),
        (
            "id with NUL",
            CreateTaskRequest {
                id: "c\0x".into(),
                ..good.clone()
            },
            "container id",
        ),
        (
            "id of 77 bytes",
            CreateTaskRequest {
                id: "a".repeat(77),
                ..good.clone()
            },
            "longer than 76",
        ),
        (
            "id with a control character",
            CreateTaskRequest {
                id: "c\n1".into(),
                ..good.clone()
            },
            "container id",
        ),
        (
            "relative bundle",
            CreateTaskRequest {
                bundle: "bundle".into(),
                ..good.clone()
            },
            "absolute",
        ),
        (
            "bundle with ..",
            CreateTaskRequest {
                bundle: format!("{bundle_text}/../c1"),
                ..good.clone()
            },
            "'..'",
        ),
        (
            "mount target escaping the rootfs",
            CreateTaskRequest {
                rootfs: vec![Mount {
                    target: "../../../etc".into(),
                    ..overlay.clone()
                }],
                ..good.clone()
            },
            "inside the root filesystem",
        ),
        (
            "mount option with NUL",
            CreateTaskRequest {
                rootfs: vec![Mount {
                    options: vec!["lowerdir=/a\0,upperdir=/b".into()],
                    ..overlay.clone()
                }],
                ..good.clone()
            },
            "NUL or control",
        ),
        (
            "mount options of 2 MiB",
            CreateTaskRequest {
                rootfs: vec![Mount {
                    options: vec!["x".repeat(2 << 20)],
                    ..overlay.clone()
                }],
                ..good.clone()
            },
            "bytes; at most",
        ),
        (
            "unknown stdio scheme",
            CreateTaskRequest {
                stdout: "http://127.0.0.1:1/x".into(),
                ..good.clone()
            },
            "scheme",
        ),
        (
            "relative file:// log",
            CreateTaskRequest {
                stdout: "file://log.txt".into(),
                ..good.clone()
            },
            "absolute",
        ),
        (
            "log driver with a relative path",
            CreateTaskRequest {
                stdout: "binary://driver?x=y".into(),
                ..good.clone()
            },
            "absolute",
        ),
        (
            "runc options that do not decode",
            CreateTaskRequest {
                options: Some(Any {
                    type_url: "containerd.runc.v1.Options".into(),
                    value: vec![0xff; 8],
                }),
                ..good.clone()
            },
            "runc options",
        ),
    ];
    for (what, request, expected) in cases {
        let (code, message) = refusal(client.create(context(), &request).await);
        assert_eq!(code, Code::INVALID_ARGUMENT, "{what}: {message}");
        assert!(
            message.contains(expected),
            "{what}: {message:?} should say {expected:?}"
        );
    }

    let exec = ExecProcessRequest {
        id: "c1".into(),
        exec_id: "../e1".into(),
        spec: Some(Any::default()),
        ..Default::default()
    };
    let (code, message) = refusal(client.exec(context(), &exec).await);
    assert_eq!(code, Code::INVALID_ARGUMENT, "{message}");
    assert!(message.contains("exec id"), "{message}");
    let exec = ExecProcessRequest {
        exec_id: "e1".into(),
        stdin: "relative/fifo".into(),
        ..exec
    };
    let (code, message) = refusal(client.exec(context(), &exec).await);
    assert_eq!(code, Code::INVALID_ARGUMENT, "{message}");

    for signal in [0, 65, 999, u32::MAX] {
        let kill = KillRequest {
            id: "c1".into(),
            signal,
            ..Default::default()
        };
        let (code, message) = refusal(client.kill(context(), &kill).await);
        assert_eq!(code, Code::INVALID_ARGUMENT, "signal {signal}: {message}");
        assert!(message.contains("is not a signal"), "{message}");
    }

    // Nothing was made: the bundle holds what it held, nothing is mounted under it, runc has
    // no state for the namespace, and the shim runs alone.
    let after: Vec<_> = std::fs::read_dir(&bundle)
        .expect("bundle")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(before, after, "the bundle is untouched");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    assert!(
        !mounts.contains(&bundle_text),
        "nothing mounted under the bundle"
    );
    let runc_root = ctrd_testbed::runc_root(NAMESPACE);
    let left = std::fs::read_dir(&runc_root)
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(left, 0, "no runc state under {}", runc_root.display());
    assert_eq!(shim.pids().len(), 1, "no process besides the shim");

    // A 16 MiB frame: ttrpc (limit 4 MiB) reads and drops it in 4 KiB pages and answers
    // INVALID_ARGUMENT; the shim's memory does not grow by the frame's size.
    let pid = shim.pids()[0].as_raw();
    let rss_before = rss_kib(pid);
    let mut stream = UnixStream::connect(shim.socket()).expect("raw connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let length: u32 = 16 << 20;
    let mut header = Vec::new();
    header.extend(length.to_be_bytes());
    header.extend(1u32.to_be_bytes());
    header.extend([1u8, 0u8]);
    stream.write_all(&header).expect("header");
    let page = vec![0u8; 1 << 20];
    for _ in 0..16 {
        stream.write_all(&page).expect("payload");
    }
    let mut reply_header = [0u8; 10];
    stream.read_exact(&mut reply_header).expect("a reply");
    let reply_len = u32::from_be_bytes(reply_header[..4].try_into().expect("4 bytes")) as usize;
    assert!(
        reply_len < 4096,
        "a short error reply, not {reply_len} bytes"
    );
    let mut reply = vec![0u8; reply_len];
    stream.read_exact(&mut reply).expect("reply payload");
    let response = <Response as Codec>::decode(&reply).expect("a ttrpc response");
    assert_eq!(
        response.status.code.enum_value_or_default(),
        Code::INVALID_ARGUMENT,
        "{:?}",
        response.status.message
    );
    assert!(
        response
            .status
            .message
            .contains("exceed maximum message size")
    );
    drop(stream);
    let rss_after = rss_kib(pid);
    eprintln!("a 16 MiB frame: the shim's RSS went from {rss_before} KiB to {rss_after} KiB");
    assert!(
        rss_after < rss_before + 8 * 1024,
        "the shim's RSS went from {rss_before} KiB to {rss_after} KiB for a 16 MiB frame"
    );
    let reply = client
        .connect(context(), &ConnectRequest { id: "c1".into() })
        .await
        .expect("the shim still serves");
    assert_eq!(reply.shim_pid, pid as u32);

    // Other users: kept out by the socket's mode, and by the shim itself past it.
    assert_eq!(
        connect_as(&shim.socket(), NOBODY, NOBODY).expect("connect as nobody"),
        Access::Denied
    );
    let open_dir = tempfile::Builder::new()
        .prefix("ctrd-open-")
        .tempdir_in("/run")
        .expect("tempdir");
    std::fs::set_permissions(open_dir.path(), std::fs::Permissions::from_mode(0o755))
        .expect("chmod");
    let link = open_dir.path().join("sock");
    std::fs::hard_link(shim.socket(), &link).expect("link");
    std::fs::set_permissions(&link, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    assert_eq!(
        connect_as(&link, NOBODY, NOBODY).expect("connect as nobody"),
        Access::Closed,
        "the shim hangs up on another uid"
    );
    // The link shares the socket's inode: give the socket back its mode.
    std::fs::set_permissions(&link, std::fs::Permissions::from_mode(0o600)).expect("chmod back");
}
