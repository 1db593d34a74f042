//! A user-namespace pod through Kubernetes' CRI with its root filesystems from our
//! snapshotter: containerd 2.x hands the pod's id mapping to the runtime handler's
//! snapshotter as the `containerd.io/snapshot/uidmapping` / `gidmapping` labels (our proxy
//! plugin says `capabilities = ["remap-ids"]`, so containerd does not chown a copy itself).
//!
//! Per daemon (2.1 and 2.4; containerd 1.6's CRI has no `userns_options`) and per shim (ours
//! as handler `ctrd-userns`, the daemon's Go shim as `runc-userns` for comparison), a pod
//! mapping host ids 100000..165536 to 0..65536 runs a container that sees its files owned by
//! root and itself as uid 0, while the host sees the container's process as uid 100000 and
//! the same files owned by 100000 (through the idmapped mount, or on disk after the chown
//! fallback); after the pod is removed no snapshot of it, no mount and no shim is left.
//! Run as root, under the daemon lock.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

use ctrd_api::runtime::v1 as cri;
use ctrd_overlay_snapshotter::{GID_MAPPING_LABEL, UID_MAPPING_LABEL};
use ctrd_snapshots::conformance::{Target, calls};
use ctrd_testbed::{
    BUSYBOX_IMAGE, CriClient, CriDaemon, CriDaemonOptions, CriShim, Daemon, ProxyPlugin,
    SnapshotterProcess, cri::RuntimeHandler,
};

/// The name containerd knows our snapshotter by.
const PROXY_NAME: &str = "ctrd-overlay";
/// The first host id of the pod's range (uids and gids alike).
const HOST_ID: u32 = 100_000;
/// The size of the range.
const LENGTH: u32 = 65_536;

/// The handlers of the test daemon, both with root filesystems from our snapshotter: ours,
/// and the daemon's own Go shim.
fn handlers() -> [(&'static str, RuntimeHandler); 2] {
    [
        (
            "our shim",
            RuntimeHandler::new("ctrd-userns", "io.containerd.ctrd.v2").snapshotter(PROXY_NAME),
        ),
        (
            "the Go shim",
            RuntimeHandler::new("runc-userns", "io.containerd.runc.v2").snapshotter(PROXY_NAME),
        ),
    ]
}

#[test]
fn user_namespace_pod_on_our_snapshotter() {
    let daemons: Vec<Daemon> = Daemon::selected();
    for daemon in daemons.iter().filter(|d| !d.is_v2()) {
        eprintln!(
            "containerd {}: not tested (its CRI has no user namespaces)",
            daemon.version()
        );
    }
    let daemons: Vec<Daemon> = daemons.into_iter().filter(|d| d.is_v2()).collect();
    assert!(
        !daemons.is_empty(),
        "user-namespace pods need containerd 2.1 or 2.4: add 2.1 or 2.4 to CTRD_TEST_DAEMONS"
    );
    for daemon in daemons {
        for mode in [Mode::Idmapped, Mode::Chowned] {
            pods_on(daemon, mode);
        }
    }
}

/// How our snapshotter serves the mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Idmapped lower layers (`uidmap=` / `gidmap=` mount options): the kernel's way.
    Idmapped,
    /// `--chown-id-mapping`: the snapshot's files chowned at Prepare; works with any runc
    /// and shim.
    Chowned,
}

/// A daemon with our snapshotter in `mode`, and one pod per handler.
fn pods_on(daemon: Daemon, mode: Mode) {
    let args: &[&str] = match mode {
        Mode::Idmapped => &[],
        Mode::Chowned => &["--chown-id-mapping"],
    };
    let snapshotter = SnapshotterProcess::start(
        Path::new(env!("CARGO_BIN_EXE_ctrd-overlay-snapshotter")),
        args,
    )
    .unwrap_or_else(|e| panic!("starting our snapshotter: {e}"));
    let options = CriDaemonOptions {
        proxies: vec![
            ProxyPlugin::snapshot(PROXY_NAME, &snapshotter.address()).capability("remap-ids"),
        ],
        handlers: handlers().map(|(_, h)| h).to_vec(),
        ..CriDaemonOptions::default()
    };
    let bed = CriDaemon::start_with(daemon, CriShim::OursAsHandler, options)
        .unwrap_or_else(|e| panic!("starting containerd {}: {e}", daemon.version()));
    for (shim, handler) in handlers() {
        eprintln!("containerd {}: {shim}, {mode:?}", daemon.version());
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            one_pod(&bed, &snapshotter, &handler.name, mode)
        }));
        if let Err(panic) = outcome {
            let log = std::fs::read_to_string(bed.containerd().log_path()).unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            eprintln!(
                "--- the end of containerd {}'s log ---\n{}\n--- our snapshotter's log ---\n{}",
                daemon.version(),
                lines[lines.len().saturating_sub(40)..].join("\n"),
                std::fs::read_to_string(snapshotter.log_path()).unwrap_or_default()
            );
            std::panic::resume_unwind(panic);
        }
    }
    // The daemon stops before the snapshotter it calls.
    drop(bed);
    drop(snapshotter);
}

/// One pod on `handler`: the checks inside and outside, then removal.
fn one_pod(bed: &CriDaemon, snapshotter: &SnapshotterProcess, handler: &str, mode: Mode) {
    let client = bed.cri();
    let mut config = client.pod_config(&format!("userns-{handler}"), false);
    set_userns(
        config
            .linux
            .as_mut()
            .and_then(|l| l.security_context.as_mut())
            .and_then(|s| s.namespace_options.as_mut()),
    );
    let pod = client
        .run_pod(config, handler)
        .unwrap_or_else(|e| panic!("RunPodSandbox on {handler}: {e}"));
    let container = |name: &str| {
        let mut config = CriClient::container_config(
            name,
            BUSYBOX_IMAGE,
            &["/bin/sh", "-c", "touch /made-inside && exec sleep 600"],
        );
        set_userns(
            config
                .linux
                .as_mut()
                .and_then(|l| l.security_context.as_mut())
                .and_then(|s| s.namespace_options.as_mut()),
        );
        config
    };

    // containerd 2.x gives a user-namespace container idmapped bind mounts of the pod's
    // /etc/hostname, /etc/hosts and /etc/resolv.conf, and refuses to create its task unless
    // the runtime's features list `mountExtensions.idmap` (runc 1.2 and later).
    if !runc_makes_idmapped_mounts() {
        let refused = client.create_container(&pod, container("refused"));
        let refused = refused.and_then(|id| client.start_container(&id).map(|()| id));
        let message = match refused {
            Ok(id) => panic!("{handler}: {id} started with CRI's idmapped mounts on runc 1.1"),
            Err(e) => e.to_string(),
        };
        assert!(
            message.contains("mountExtensions.idmap"),
            "{handler}: refused for another reason: {message}"
        );
    }

    // So the container brings those three files itself (kubelet brings /etc/hosts too), as
    // plain read-only bind mounts, and only its root filesystem is mapped.
    let files = etc_files();
    let mut config = container("c");
    config.mounts = ["hostname", "hosts", "resolv.conf"]
        .into_iter()
        .map(|name| cri::Mount {
            container_path: format!("/etc/{name}"),
            host_path: files.path().join(name).display().to_string(),
            readonly: true,
            ..Default::default()
        })
        .collect();
    let id = client
        .run_container(&pod, config)
        .unwrap_or_else(|e| panic!("container on {handler}: {e}"));

    // Inside: root, its files root's, its mapping the pod's.
    eventually("the container's first file", || {
        exec(client, &id, &["/bin/sh", "-c", "test -e /made-inside"]).exit_code == 0
    });
    let inside = exec(
        client,
        &id,
        &[
            "/bin/sh",
            "-c",
            "id -u; stat -c %u:%g /bin/busybox /made-inside /; cat /proc/self/uid_map",
        ],
    );
    let said = String::from_utf8_lossy(&inside.stdout).into_owned();
    let lines: Vec<&str> = said.lines().map(str::trim).collect();
    assert_eq!(inside.exit_code, 0, "{inside:?}");
    assert_eq!(lines.first(), Some(&"0"), "uid inside: {said}");
    assert_eq!(
        lines.get(1..4),
        Some(&["0:0", "0:0", "0:0"][..]),
        "owners inside of /bin/busybox, /made-inside and /: {said}"
    );
    let map: Vec<&str> = lines
        .get(4)
        .map_or(Vec::new(), |l| l.split_whitespace().collect());
    assert_eq!(
        map,
        ["0", &HOST_ID.to_string(), &LENGTH.to_string()],
        "uid_map inside: {said}"
    );

    // Outside: the process and the same files belong to the mapped ids.
    let pid = container_pid(bed, &id);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("process status");
    let uids: Vec<&str> = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .map_or(Vec::new(), |l| l.split_whitespace().collect());
    assert_eq!(
        uids.first(),
        Some(&HOST_ID.to_string().as_str()),
        "{status}"
    );
    for file in ["bin/busybox", "made-inside"] {
        let path = format!("/proc/{pid}/root/{file}");
        let meta = std::fs::symlink_metadata(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(
            (meta.uid(), meta.gid()),
            (HOST_ID, HOST_ID),
            "{path} as the host sees it"
        );
    }

    // Our snapshotter made the container's root filesystem with the pod's mapping.
    let direct = client.block_on(Target::direct(&snapshotter.address()));
    let direct = direct.unwrap_or_else(|e| panic!("{}", e.full_message()));
    let names = client
        .block_on(calls::list(&direct, &[]))
        .unwrap_or_else(|s| panic!("List on our snapshotter: {s}"));
    let key = names
        .iter()
        .find(|n| n.ends_with(&format!("/{id}")))
        .unwrap_or_else(|| panic!("no snapshot of {id} in our snapshotter: {names:?}"));
    let info = client
        .block_on(calls::stat(&direct, key))
        .unwrap_or_else(|s| panic!("Stat {key}: {s}"));
    let expected = format!("0:{HOST_ID}:{LENGTH}");
    for label in [UID_MAPPING_LABEL, GID_MAPPING_LABEL] {
        assert_eq!(info.labels.get(label), Some(&expected), "{key}: {info:?}");
    }
    let mounts = client
        .block_on(calls::mounts(&direct, key))
        .unwrap_or_else(|s| panic!("Mounts {key}: {s}"));
    let idmapped = mounts
        .iter()
        .any(|m| m.options.iter().any(|o| o.starts_with("uidmap=")));
    assert_eq!(
        idmapped,
        mode == Mode::Idmapped,
        "{mode:?}: the mounts of {key} (a kernel without idmapped overlay layers, Linux \
         before 5.19, gets chowned snapshots only): {mounts:?}"
    );
    if mode == Mode::Chowned {
        // The chowned copy is on disk: the busybox binary in the snapshot's upper layer.
        let upper = mounts
            .iter()
            .flat_map(|m| &m.options)
            .find_map(|o| o.strip_prefix("upperdir="))
            .unwrap_or_else(|| panic!("no upper layer in {mounts:?}"));
        let meta = std::fs::symlink_metadata(Path::new(upper).join("bin/busybox"))
            .unwrap_or_else(|e| panic!("the chowned busybox in {upper}: {e}"));
        assert_eq!((meta.uid(), meta.gid()), (HOST_ID, HOST_ID), "{upper}");
    }

    // Removed: no snapshot of the pod in our snapshotter, nothing mounted, no shim.
    let shims = bed.shim_pids();
    client
        .remove_pod(&pod)
        .unwrap_or_else(|e| panic!("removing the pod on {handler}: {e}"));
    bed.containerd()
        .collect_garbage()
        .unwrap_or_else(|e| panic!("{e}"));
    gone(client, &direct, &[&pod.id, &id]);
    let root = snapshotter.root().display().to_string();
    eventually("nothing of the pod mounted", || {
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        !mounts.contains(&root) && !mounts.contains(&pod.id)
    });
    eventually("the pod's shim exits", || {
        bed.shim_pids().iter().all(|p| !shims.contains(p))
    });
}

/// Whether runc's `features` list idmapped mounts (`mountExtensions.idmap`), which runc 1.1
/// does not.
fn runc_makes_idmapped_mounts() -> bool {
    let out = std::process::Command::new("runc")
        .arg("features")
        .output()
        .expect("run runc features");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    json["linux"]["mountExtensions"]["idmap"]["enabled"] == serde_json::Value::Bool(true)
}

/// A folder with the container's own /etc/hostname, /etc/hosts and /etc/resolv.conf, which
/// the container's root (host uid 100000) can reach: runc 1.1 makes bind mounts from inside
/// the user namespace.
fn etc_files() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::Builder::new()
        .prefix("ctrd-userns-etc-")
        .tempdir_in("/tmp")
        .expect("a folder for the container's files");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
        .expect("open the folder to the container");
    for (name, text) in [
        ("hostname", "userns\n"),
        ("hosts", "127.0.0.1 localhost\n"),
        ("resolv.conf", "nameserver 127.0.0.1\n"),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
    dir
}

/// Puts the pod's user namespace (mode POD, the test's range) into `options`.
fn set_userns(options: Option<&mut cri::NamespaceOption>) {
    let options = options.expect("the test bed's configs carry namespace options");
    let range = || {
        vec![cri::IdMapping {
            host_id: HOST_ID,
            container_id: 0,
            length: LENGTH,
        }]
    };
    options.userns_options = Some(cri::UserNamespace {
        mode: cri::NamespaceMode::Pod as i32,
        uids: range(),
        gids: range(),
    });
}

/// Waits until none of `ids` has a snapshot in our snapshotter (containerd removes them
/// from the snapshotter when it collects garbage).
fn gone(client: &CriClient, direct: &Target, ids: &[&str]) {
    let mut names = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        names = client
            .block_on(calls::list(direct, &[]))
            .unwrap_or_else(|s| panic!("List on our snapshotter: {s}"));
        if !names
            .iter()
            .any(|n| ids.iter().any(|id| n.ends_with(&format!("/{id}"))))
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("snapshots of {ids:?} left in our snapshotter: {names:?}");
}

fn exec(client: &CriClient, id: &str, cmd: &[&str]) -> cri::ExecSyncResponse {
    let request = cri::ExecSyncRequest {
        container_id: id.into(),
        cmd: cmd.iter().map(|s| (*s).to_owned()).collect(),
        timeout: 20,
    };
    client
        .runtime(|mut c| async move { c.exec_sync(request).await })
        .unwrap_or_else(|s| panic!("ExecSync {cmd:?}: {s}"))
}

/// The host pid of a running container, from runc's state.
fn container_pid(bed: &CriDaemon, id: &str) -> u32 {
    let state = std::process::Command::new("runc")
        .arg("--root")
        .arg(bed.runc_root())
        .args(["state", id])
        .output()
        .expect("runc state");
    let json: serde_json::Value = serde_json::from_slice(&state.stdout)
        .unwrap_or_else(|e| panic!("runc state {id}: {e}: {state:?}"));
    json["pid"]
        .as_u64()
        .and_then(|p| u32::try_from(p).ok())
        .unwrap_or_else(|| panic!("no pid in runc's state of {id}: {json}"))
}

/// Waits up to 20 s for `check`.
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check() {
        assert!(Instant::now() < deadline, "{what}: not within 20 s");
        std::thread::sleep(Duration::from_millis(50));
    }
}
