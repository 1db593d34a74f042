//! Pods through Kubernetes' CRI, as kubelet drives them, with our shim as containerd's runtime
//! handler: one shim per pod, exec, status, stop, update, stats, logs, host network,
//! containerd restarted under running pods, and nothing left behind.
//!
//! Every scenario runs per daemon (1.6, 2.1, 2.4) and per way of running a shim under CRI: ours
//! as runtime type `io.containerd.ctrd.v2` (handler `ctrd`), ours as the drop-in
//! `containerd-shim-runc-v2` with runtime options from the handler's configuration (handler
//! `runc`), and the daemon's own Go shim (handler `runc`) as the reference, so a difference
//! between the shims shows as a failure on one of them. Scenarios of one daemon and shim share
//! one CRI daemon (ctrd_testbed::CriDaemon), started on first use. (libtest-mimic, as in
//! `runc_shim_scenarios.rs`, for fixtures that outlive a test.)

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ctrd_api::runtime::v1 as cri;
use ctrd_testbed::{BUSYBOX_IMAGE, CriClient, CriDaemon, CriShim, Daemon, Pod};
use libtest_mimic::{Arguments, Completion, Failed, Trial};

type Scenario = (&'static str, fn(&mut CriDaemon));

const SCENARIOS: &[Scenario] = &[
    ("one_shim_serves_the_pod", one_shim_serves_the_pod),
    (
        "exec_sync_output_and_exit_code",
        exec_sync_output_and_exit_code,
    ),
    ("exited_container_status", exited_container_status),
    ("oom_killed_reason", oom_killed_reason),
    ("stop_with_a_grace_period", stop_with_a_grace_period),
    (
        "update_resources_reach_the_cgroup",
        update_resources_reach_the_cgroup,
    ),
    ("stats_have_real_figures", stats_have_real_figures),
    (
        "logs_in_cri_format_and_reopened",
        logs_in_cri_format_and_reopened,
    ),
    ("pod_and_host_network", pod_and_host_network),
    (
        "pods_survive_a_containerd_restart",
        pods_survive_a_containerd_restart,
    ),
    ("stdio_belongs_to_io_uid", stdio_belongs_to_io_uid),
    ("mounts_with_propagation", mounts_with_propagation),
    (
        "exec_sync_of_a_missing_binary",
        exec_sync_of_a_missing_binary,
    ),
];

struct Fixture {
    daemon: Daemon,
    shim: CriShim,
    bed: Mutex<Option<CriDaemon>>,
}

impl Fixture {
    fn name(&self) -> String {
        format!(
            "{}_on_containerd_{}",
            self.shim.name(),
            self.daemon.version().replace('.', "_")
        )
    }

    fn run(&self, scenario: fn(&mut CriDaemon)) -> Result<(), Failed> {
        let mut slot = self.bed.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            *slot = Some(CriDaemon::start(self.daemon, self.shim).map_err(|e| e.to_string())?);
        }
        let Some(bed) = slot.as_mut() else {
            return Err("no CRI daemon".into());
        };
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| scenario(bed))) {
            // What containerd and the shims logged, for the failure's report.
            let log = std::fs::read_to_string(bed.containerd().log_path()).unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            eprintln!(
                "--- the end of {}'s containerd log ---\n{}",
                self.name(),
                lines[lines.len().saturating_sub(60)..].join("\n")
            );
            // The scenario's pods go with the client; a fresh one for the next scenario.
            *slot = None;
            resume_unwind(panic);
        }
        Ok(())
    }

    /// After every scenario: no pod, no shim and no runc container of this daemon is left.
    fn check_nothing_left(&self) -> Result<Completion, Failed> {
        let slot = self.bed.lock().unwrap_or_else(|p| p.into_inner());
        let Some(bed) = slot.as_ref() else {
            return Ok(Completion::ignored_with("no scenario ran on this pair"));
        };
        let pods = bed
            .cri()
            .runtime(|mut c| async move {
                c.list_pod_sandbox(cri::ListPodSandboxRequest::default())
                    .await
            })
            .map_err(|s| s.to_string())?;
        if !pods.items.is_empty() {
            return Err(format!("pods left: {:?}", pods.items).into());
        }
        let shims = bed.shim_pids();
        if !shims.is_empty() {
            return Err(format!("shims left: {shims:?}").into());
        }
        Ok(Completion::Completed)
    }
}

fn main() -> ExitCode {
    let args = Arguments::from_args();
    let fixtures: Vec<Arc<Fixture>> = Daemon::selected()
        .into_iter()
        .flat_map(|daemon| {
            CriShim::ALL.map(|shim| {
                Arc::new(Fixture {
                    daemon,
                    shim,
                    bed: Mutex::new(None),
                })
            })
        })
        .collect();
    let mut trials = Vec::new();
    for (name, scenario) in SCENARIOS {
        for fixture in &fixtures {
            let f = fixture.clone();
            let scenario = *scenario;
            trials.push(Trial::test(format!("{}::{name}", f.name()), move || {
                f.run(scenario)
            }));
        }
    }
    let ran = libtest_mimic::run(&args, trials);
    let checks = fixtures
        .iter()
        .map(|fixture| {
            let f = fixture.clone();
            Trial::ignorable_test(format!("{}::leaves_nothing_behind", f.name()), move || {
                f.check_nothing_left()
            })
        })
        .collect();
    let checked = libtest_mimic::run(&args, checks);
    drop(fixtures);
    if ran.has_failed() || checked.has_failed() {
        ExitCode::from(101)
    } else {
        ExitCode::SUCCESS
    }
}

// ---- helpers ----

fn pod(bed: &CriDaemon, name: &str) -> Pod {
    let config = bed.cri().pod_config(name, false);
    bed.cri()
        .run_pod(config, bed.shim().handler())
        .unwrap_or_else(|e| panic!("{e}"))
}

fn container(name: &str, script: &str) -> cri::ContainerConfig {
    CriClient::container_config(name, BUSYBOX_IMAGE, &["/bin/sh", "-c", script])
}

fn run(bed: &CriDaemon, pod: &Pod, config: cri::ContainerConfig) -> String {
    bed.cri()
        .run_container(pod, config)
        .unwrap_or_else(|e| panic!("{e}"))
}

fn status(bed: &CriDaemon, id: &str) -> cri::ContainerStatus {
    bed.cri()
        .container_status(id)
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Waits up to `secs` seconds for `check`.
fn eventually(what: &str, secs: u64, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !check() {
        assert!(Instant::now() < deadline, "{what}: not within {secs} s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn wait_exited(bed: &CriDaemon, id: &str) -> cri::ContainerStatus {
    let mut last = None;
    eventually(&format!("container {id} exits"), 30, || {
        let s = status(bed, id);
        let done = s.state == cri::ContainerState::ContainerExited as i32;
        last = Some(s);
        done
    });
    last.expect("status")
}

fn exec_sync(bed: &CriDaemon, id: &str, cmd: &[&str]) -> cri::ExecSyncResponse {
    let request = cri::ExecSyncRequest {
        container_id: id.into(),
        cmd: cmd.iter().map(|s| (*s).to_owned()).collect(),
        timeout: 20,
    };
    bed.cri()
        .runtime(|mut c| async move { c.exec_sync(request).await })
        .unwrap_or_else(|s| panic!("ExecSync {cmd:?}: {s}"))
}

fn remove(bed: &CriDaemon, pod: &Pod) {
    bed.cri().remove_pod(pod).unwrap_or_else(|e| panic!("{e}"));
}

/// The host pid of a running container.
fn container_pid(bed: &CriDaemon, id: &str) -> u32 {
    let state = std::process::Command::new("runc")
        .arg("--root")
        .arg(bed.runc_root())
        .args(["state", id])
        .output()
        .expect("runc state");
    let json: serde_json::Value = serde_json::from_slice(&state.stdout)
        .unwrap_or_else(|e| panic!("runc state {id}: {e}: {state:?}"));
    json["pid"].as_u64().expect("pid") as u32
}

// ---- scenarios ----

/// Two containers in a pod share one shim process with the sandbox; removing the pod ends
/// it. Under our shim as the drop-in, the handler's `Root` option put runc's state where the
/// configuration says.
fn one_shim_serves_the_pod(bed: &mut CriDaemon) {
    let before = bed.shim_pids();
    let pod = pod(bed, "grouped");
    let a = run(bed, &pod, container("a", "sleep 600"));
    let b = run(bed, &pod, container("b", "sleep 600"));
    let during: Vec<i32> = bed
        .shim_pids()
        .into_iter()
        .filter(|p| !before.contains(p))
        .collect();
    assert_eq!(during.len(), 1, "one shim for the pod: {during:?}");
    for id in [&pod.id, &a, &b] {
        assert!(
            bed.runc_root().join(id).is_dir(),
            "runc state of {id} under {}",
            bed.runc_root().display()
        );
    }
    remove(bed, &pod);
    eventually("the pod's shim exits", 10, || {
        bed.shim_pids().iter().all(|p| !during.contains(p))
    });
}

/// ExecSync returns both streams and the exit code.
fn exec_sync_output_and_exit_code(bed: &mut CriDaemon) {
    let pod = pod(bed, "exec");
    let id = run(bed, &pod, container("c", "sleep 600"));
    let out = exec_sync(
        bed,
        &id,
        &["/bin/sh", "-c", "echo out; echo err >&2; exit 3"],
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "err\n");
    assert_eq!(out.exit_code, 3);
    remove(bed, &pod);
}

/// A container that exits on its own: its code, reason `Error` and its finish time.
fn exited_container_status(bed: &mut CriDaemon) {
    let pod = pod(bed, "exits");
    let started = now_nanos();
    let id = run(bed, &pod, container("c", "exit 7"));
    let status = wait_exited(bed, &id);
    assert_eq!(status.exit_code, 7, "{status:?}");
    assert_eq!(status.reason, "Error", "{status:?}");
    assert!(status.finished_at >= started, "{status:?}");
    // No `finished_at >= started_at`: containerd stamps `started_at` when Start returns,
    // after a process this quick has exited (so under the Go shim too).
    remove(bed, &pod);
}

/// A container over its memory limit: killed, reason `OOMKilled`.
fn oom_killed_reason(bed: &mut CriDaemon) {
    let pod = pod(bed, "oom");
    let mut config = container("c", "tail /dev/zero");
    if let Some(linux) = config.linux.as_mut() {
        linux.resources = Some(cri::LinuxContainerResources {
            memory_limit_in_bytes: 16 << 20,
            ..Default::default()
        });
    }
    let id = run(bed, &pod, config);
    let status = wait_exited(bed, &id);
    assert_eq!(status.reason, "OOMKilled", "{status:?}");
    assert_eq!(status.exit_code, 137, "{status:?}");
    remove(bed, &pod);
}

/// StopContainer with a grace period: a process ignoring SIGTERM is killed once it is over.
fn stop_with_a_grace_period(bed: &mut CriDaemon) {
    let pod = pod(bed, "stop");
    let id = run(
        bed,
        &pod,
        container("c", "trap '' TERM; echo ready; while :; do sleep 0.1; done"),
    );
    eventually("the trap is set", 10, || {
        std::fs::read_to_string(std::path::Path::new(&pod.config.log_directory).join("c.log"))
            .is_ok_and(|l| l.contains("ready"))
    });
    let started = Instant::now();
    let request = cri::StopContainerRequest {
        container_id: id.clone(),
        timeout: 2,
    };
    bed.cri()
        .runtime(|mut c| async move { c.stop_container(request).await })
        .unwrap_or_else(|s| panic!("StopContainer: {s}"));
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_secs(10),
        "stop took {took:?}"
    );
    let status = status(bed, &id);
    assert_eq!(status.exit_code, 137, "{status:?}");
    remove(bed, &pod);
}

/// UpdateContainerResources reaches the container's cgroup.
fn update_resources_reach_the_cgroup(bed: &mut CriDaemon) {
    let pod = pod(bed, "update");
    let id = run(bed, &pod, container("c", "sleep 600"));
    let request = cri::UpdateContainerResourcesRequest {
        container_id: id.clone(),
        linux: Some(cri::LinuxContainerResources {
            memory_limit_in_bytes: 48 << 20,
            ..Default::default()
        }),
        ..Default::default()
    };
    bed.cri()
        .runtime(|mut c| async move { c.update_container_resources(request).await })
        .unwrap_or_else(|s| panic!("UpdateContainerResources: {s}"));
    let pid = container_pid(bed, &id);
    assert_eq!(
        ctrd_testbed::cgroup::memory_limit(pid),
        Some(48 << 20),
        "memory limit of {pid}"
    );
    remove(bed, &pod);
}

/// Stats of a busy container: CPU time, memory working set, and the pod's figures.
fn stats_have_real_figures(bed: &mut CriDaemon) {
    let pod = pod(bed, "stats");
    let id = run(
        bed,
        &pod,
        container(
            "busy",
            "a=$(head -c 4000000 /dev/zero | tr '\\0' a); while :; do :; done",
        ),
    );
    let single = |bed: &CriDaemon| {
        let request = cri::ContainerStatsRequest {
            container_id: id.clone(),
        };
        bed.cri()
            .runtime(|mut c| async move { c.container_stats(request).await })
            .unwrap_or_else(|s| panic!("ContainerStats: {s}"))
            .stats
            .expect("stats")
    };
    eventually("CPU time and memory show", 20, || {
        let stats = single(bed);
        let cpu = stats
            .cpu
            .as_ref()
            .and_then(|c| c.usage_core_nano_seconds.as_ref())
            .map_or(0, |v| v.value);
        let memory = stats
            .memory
            .as_ref()
            .and_then(|m| m.working_set_bytes.as_ref())
            .map_or(0, |v| v.value);
        cpu > 10_000_000 && memory > 1_000_000
    });
    let list = bed
        .cri()
        .runtime(|mut c| async move {
            c.list_container_stats(cri::ListContainerStatsRequest::default())
                .await
        })
        .unwrap_or_else(|s| panic!("ListContainerStats: {s}"));
    assert!(
        list.stats
            .iter()
            .any(|s| s.attributes.as_ref().is_some_and(|a| a.id == id)),
        "{list:?}"
    );
    let pods = bed
        .cri()
        .runtime(|mut c| async move {
            c.list_pod_sandbox_stats(cri::ListPodSandboxStatsRequest::default())
                .await
        })
        .unwrap_or_else(|s| panic!("ListPodSandboxStats: {s}"));
    let ours = pods
        .stats
        .iter()
        .find(|s| s.attributes.as_ref().is_some_and(|a| a.id == pod.id))
        .unwrap_or_else(|| panic!("no stats for the pod: {pods:?}"));
    let linux = ours.linux.as_ref().expect("linux stats");
    let cpu = linux
        .cpu
        .as_ref()
        .and_then(|c| c.usage_core_nano_seconds.as_ref())
        .map_or(0, |v| v.value);
    assert!(cpu > 10_000_000, "pod CPU {cpu}: {ours:?}");
    remove(bed, &pod);
}

/// Output reaches the CRI log file (`TIME STREAM TAG LINE`), and after ReopenContainerLog a
/// new file at the same path.
fn logs_in_cri_format_and_reopened(bed: &mut CriDaemon) {
    let pod = pod(bed, "logs");
    let script = "echo first; echo err >&2; while [ ! -e /tmp/go ]; do sleep 0.05; done; \
                  echo second; sleep 600";
    let id = run(bed, &pod, container("c", script));
    let log = std::path::Path::new(&pod.config.log_directory).join("c.log");
    eventually("both first lines are logged", 10, || {
        std::fs::read_to_string(&log).is_ok_and(|l| l.lines().count() >= 2)
    });
    let text = std::fs::read_to_string(&log).expect("log");
    let mut seen: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.splitn(4, ' ').collect();
        assert_eq!(fields.len(), 4, "{line:?}");
        assert!(
            fields[0].contains('T') && fields[0].ends_with('Z') || fields[0].contains('+'),
            "timestamp in {line:?}"
        );
        assert_eq!(fields[2], "F", "{line:?}");
        seen.push((fields[1].to_owned(), fields[3].to_owned()));
    }
    seen.sort();
    assert_eq!(
        seen,
        [
            ("stderr".to_owned(), "err".to_owned()),
            ("stdout".to_owned(), "first".to_owned())
        ]
    );
    let rotated = log.with_extension("log.1");
    std::fs::rename(&log, &rotated).expect("rotate");
    let request = cri::ReopenContainerLogRequest {
        container_id: id.clone(),
    };
    bed.cri()
        .runtime(|mut c| async move { c.reopen_container_log(request).await })
        .unwrap_or_else(|s| panic!("ReopenContainerLog: {s}"));
    exec_sync(bed, &id, &["touch", "/tmp/go"]);
    eventually("the line after reopening is in the new file", 10, || {
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains(" stdout F second"))
    });
    assert!(
        !std::fs::read_to_string(&rotated)
            .expect("rotated")
            .contains("second")
    );
    remove(bed, &pod);
}

/// A pod gets a network namespace of its own with an address from CNI; a host-network pod's
/// containers share the host's.
fn pod_and_host_network(bed: &mut CriDaemon) {
    let host_ns = std::fs::read_link("/proc/self/ns/net").expect("netns");
    let own = pod(bed, "net");
    let id = run(bed, &own, container("c", "sleep 600"));
    let pid = container_pid(bed, &id);
    let ns = std::fs::read_link(format!("/proc/{pid}/ns/net")).expect("netns");
    assert_ne!(ns, host_ns, "a pod network namespace");
    let request = cri::PodSandboxStatusRequest {
        pod_sandbox_id: own.id.clone(),
        verbose: false,
    };
    let status = bed
        .cri()
        .runtime(|mut c| async move { c.pod_sandbox_status(request).await })
        .unwrap_or_else(|s| panic!("PodSandboxStatus: {s}"));
    let ip = status
        .status
        .and_then(|s| s.network)
        .map(|n| n.ip)
        .unwrap_or_default();
    assert!(ip.starts_with("10.250."), "pod address {ip:?}");
    let out = exec_sync(bed, &id, &["ip", "-o", "-4", "addr", "show", "eth0"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("{ip}/")),
        "{out:?}"
    );
    remove(bed, &own);

    let config = bed.cri().pod_config("hostnet", true);
    let host = bed
        .cri()
        .run_pod(config, bed.shim().handler())
        .unwrap_or_else(|e| panic!("{e}"));
    let id = run(bed, &host, container("c", "sleep 600"));
    let pid = container_pid(bed, &id);
    let ns = std::fs::read_link(format!("/proc/{pid}/ns/net")).expect("netns");
    assert_eq!(ns, host_ns, "the host's network namespace");
    remove(bed, &host);
}

/// containerd restarted with a pod running: the pod and its container are still managed
/// (status, exec, stop) by the new daemon through the same shim.
fn pods_survive_a_containerd_restart(bed: &mut CriDaemon) {
    let pod = pod(bed, "restart");
    let id = run(bed, &pod, container("c", "sleep 600"));
    let shims = bed.shim_pids();
    bed.restart().unwrap_or_else(|e| panic!("{e}"));
    eventually("the container is running after the restart", 20, || {
        bed.cri()
            .container_status(&id)
            .is_ok_and(|s| s.state == cri::ContainerState::ContainerRunning as i32)
    });
    assert_eq!(bed.shim_pids(), shims, "the same shims serve the pod");
    let out = exec_sync(bed, &id, &["echo", "still here"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "still here\n");
    remove(bed, &pod);
}

/// With `IoUid`/`IoGid` in the handler's options (as for user-namespace pods), a container
/// running as that user with no capabilities can reopen its stdout and stderr by path.
/// (runc itself gives a process's stdio to its user, so this holds under both shims even
/// without the options; the shim's own pipes, stdin's under ours, take the options.)
/// containerd 1.6 hands options only to `io.containerd.runc.*` runtime types, so our own
/// type gets none there and is not run.
fn stdio_belongs_to_io_uid(bed: &mut CriDaemon) {
    if bed.shim() == CriShim::OursAsHandler && bed.containerd().daemon() == Daemon::Bookworm {
        return;
    }
    let pod = pod(bed, "iouid");
    let mut config = container(
        "c",
        "id -u; echo out > /dev/stdout; echo err > /dev/stderr; sleep 600",
    );
    if let Some(context) = config
        .linux
        .as_mut()
        .and_then(|l| l.security_context.as_mut())
    {
        context.run_as_user = Some(cri::Int64Value {
            value: i64::from(ctrd_testbed::IO_UID),
        });
        // Without CAP_DAC_OVERRIDE (which CRI grants by default), only ownership lets the
        // user reopen its stdio.
        context.capabilities = Some(cri::Capability {
            drop_capabilities: vec!["ALL".into()],
            ..Default::default()
        });
    }
    run(bed, &pod, config);
    let log = std::path::Path::new(&pod.config.log_directory).join("c.log");
    eventually("all three lines are logged", 10, || {
        std::fs::read_to_string(&log).is_ok_and(|l| l.lines().count() >= 3)
    });
    let text = std::fs::read_to_string(&log).expect("log");
    for line in [" stdout F 1000", " stdout F out", " stderr F err"] {
        assert!(text.contains(line), "{line:?} missing in {text:?}");
    }
    remove(bed, &pod);
}

/// A host folder made a shared mount of its own (CRI refuses host-to-container propagation
/// from a private mount, and this host's root is private), unmounted when dropped.
struct SharedFolder(tempfile::TempDir);

impl SharedFolder {
    fn new() -> SharedFolder {
        use nix::mount::{MsFlags, mount};
        let dir = tempfile::tempdir().expect("tempdir");
        mount(
            Some(dir.path()),
            dir.path(),
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .expect("bind");
        mount(
            None::<&str>,
            dir.path(),
            None::<&str>,
            MsFlags::MS_SHARED | MsFlags::MS_REC,
            None::<&str>,
        )
        .expect("make shared");
        SharedFolder(dir)
    }

    fn path(&self) -> &std::path::Path {
        self.0.path()
    }
}

impl Drop for SharedFolder {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.path().join("sub"), nix::mount::MntFlags::MNT_DETACH);
        let _ = nix::mount::umount2(self.path(), nix::mount::MntFlags::MNT_DETACH);
    }
}

/// CRI's mounts: host-to-container propagation (a mount made on the host after the start
/// shows inside), and a read-only bind.
fn mounts_with_propagation(bed: &mut CriDaemon) {
    let shared = SharedFolder::new();
    let readonly = tempfile::tempdir().expect("tempdir");
    std::fs::write(readonly.path().join("seen"), "ro\n").expect("write");
    let pod = pod(bed, "mounts");
    let mut config = container("c", "sleep 600");
    config.mounts = vec![
        cri::Mount {
            container_path: "/mnt/h2c".into(),
            host_path: shared.path().display().to_string(),
            propagation: cri::MountPropagation::PropagationHostToContainer as i32,
            ..Default::default()
        },
        cri::Mount {
            container_path: "/mnt/ro".into(),
            host_path: readonly.path().display().to_string(),
            readonly: true,
            ..Default::default()
        },
    ];
    let id = run(bed, &pod, config);
    let sub = shared.path().join("sub");
    std::fs::create_dir(&sub).expect("mkdir");
    nix::mount::mount(
        Some("tmpfs"),
        &sub,
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        None::<&str>,
    )
    .expect("tmpfs on the host");
    std::fs::write(sub.join("late"), "propagated\n").expect("write");
    let out = exec_sync(bed, &id, &["cat", "/mnt/h2c/sub/late"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "propagated\n",
        "{out:?}"
    );
    let out = exec_sync(bed, &id, &["cat", "/mnt/ro/seen"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ro\n", "{out:?}");
    let out = exec_sync(bed, &id, &["touch", "/mnt/ro/x"]);
    assert_ne!(
        out.exit_code, 0,
        "a read-only mount refuses writes: {out:?}"
    );
    remove(bed, &pod);
}

/// ExecSync of a binary the container lacks answers at once with runc's error (containerd
/// 1.6 used to wait for an exit that never came under our shim), and the container lives on.
fn exec_sync_of_a_missing_binary(bed: &mut CriDaemon) {
    let pod = pod(bed, "nobin");
    let id = run(bed, &pod, container("c", "sleep 600"));
    let request = cri::ExecSyncRequest {
        container_id: id.clone(),
        cmd: vec!["/no/such/binary".into()],
        timeout: 20,
    };
    let started = Instant::now();
    let answer = bed
        .cri()
        .runtime(|mut c| async move { c.exec_sync(request).await });
    let took = started.elapsed();
    assert!(took < Duration::from_secs(10), "ExecSync took {took:?}");
    match answer {
        Err(status) => assert!(
            status.message().contains("no such file") || status.message().contains("not found"),
            "{status:?}"
        ),
        Ok(out) => assert_ne!(out.exit_code, 0, "{out:?}"),
    }
    let out = exec_sync(bed, &id, &["echo", "alive"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "alive\n");
    remove(bed, &pod);
}

fn now_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}
