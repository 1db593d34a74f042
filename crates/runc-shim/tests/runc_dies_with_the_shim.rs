//! A runc command dies with the shim that started it (a parent-death signal, as go-runc's
//! `PdeathSignal`), so a shim killed in the middle of a call leaves no runc behind.
//!
//! Real runc is made to hang: the container's spec has a `createRuntime` hook that sleeps,
//! and `runc create` waits for its hooks, so the shim's Create is in a runc call for as long
//! as the hook runs. The shim is then killed with SIGKILL. On our shim and the Go shim, under
//! every daemon.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{Bed, Shim, shim_pids};
use ctrd_testbed::{Bundle, Daemon};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const ID: &str = "hooked";
/// How long the hook keeps `runc create` waiting.
const HOOK_SECONDS: &str = "30";

/// `(pid, command name)` of the children of `parent`.
fn children(parent: i32) -> Vec<(i32, String)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| {
        let pid: i32 = e.ok()?.file_name().to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let (head, rest) = stat.rsplit_once(')')?;
        let comm = head.split_once('(')?.1.to_owned();
        let ppid: i32 = rest.split_whitespace().nth(1)?.parse().ok()?;
        (ppid == parent).then_some((pid, comm))
    })
    .collect()
}

/// The shim, its `runc create` and the hook runc waits for, once they all run.
fn hanging_create(bed: &Bed) -> (i32, i32, i32) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        for shim in shim_pids(bed.containerd()) {
            for (runc, _) in children(shim).into_iter().filter(|(_, c)| c == "runc") {
                if let Some((hook, _)) = children(runc).into_iter().find(|(_, c)| c == "sleep") {
                    return (shim, runc, hook);
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "no shim with a runc create waiting for its hook"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn runc_dies_with(daemon: Daemon, shim_kind: Shim) {
    let on = format!("{shim_kind:?} shim on containerd {}", daemon.version());
    let bed = Bed::new(daemon, shim_kind);
    let bundle = Bundle::busybox(&["/bin/sleep", "300"]).expect("bundle");
    let rootfs = bundle.path().join("rootfs");
    bundle
        .edit_spec(|spec| {
            spec["root"]["path"] = rootfs.display().to_string().into();
            spec["hooks"] = serde_json::json!({
                "createRuntime": [{ "path": "/bin/sleep", "args": ["sleep", HOOK_SECONDS] }]
            });
        })
        .expect("spec");
    let config = bundle.config_path().display().to_string();
    let mut run = bed
        .ctr(&["run", "-d", "--config", &config, ID])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("ctr run");
    let (shim, runc, hook) = hanging_create(&bed);
    kill(Pid::from_raw(shim), Signal::SIGKILL).expect("kill the shim");
    let deadline = Instant::now() + Duration::from_secs(2);
    let gone = loop {
        if !ctrd_testbed::cleanup::alive(Pid::from_raw(runc)) {
            break true;
        }
        if Instant::now() > deadline {
            break false;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    // The hook is runc's child, not the shim's: it outlives runc either way.
    let _ = kill(Pid::from_raw(hook), Signal::SIGKILL);
    let _ = run.wait();
    bed.sweep();
    assert!(
        gone,
        "{on}: runc create {runc} still runs after its shim was killed"
    );
}

#[test]
fn runc_dies_with_the_shim() {
    for daemon in Daemon::selected() {
        for shim in [Shim::Ours, Shim::Go] {
            runc_dies_with(daemon, shim);
        }
    }
}
