//! Start and exec latency, each split into what no runc shim can avoid (`ctr` and
//! containerd's own work, measured through the chroot example shim, which runs no runc; and
//! runc's, the commands a shim must run, timed directly on containerd's own spec) and what is
//! left: the shim's own share.

use std::ffi::OsStr;
use std::io::{Read, Seek};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ctrd_testbed::Bundle;
use serde_json::json;

use super::results::{Floor, Pair, WithRunc};
use super::subject::{FLOOR_RUNTIME, RUNC_RUNTIME, Subject, ctr_run};
use super::{go_on, median, ms, order};
use crate::Error;

/// A bundle holding containerd's own spec for `id` (from its task folder on `s`'s daemon),
/// made to run `/bin/true` on `rootfs`: what runc is given for a `ctr run`.
pub fn containerd_spec_bundle(s: &Subject<'_>, id: &str, rootfs: &str) -> Result<Bundle, Error> {
    let path = s
        .containerd
        .dir()
        .join("state/io.containerd.runtime.v2.task")
        .join(&s.ns)
        .join(id)
        .join("config.json");
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    let mut spec: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Error::Message(format!("{}: {e}", path.display())))?;
    spec["root"] = json!({ "path": rootfs });
    spec["process"]["args"] = json!(["/bin/true"]);
    let bundle = Bundle::busybox(&["/bin/true"]).map_err(|e| Error::Message(e.to_string()))?;
    bundle
        .edit_spec(|s| *s = spec)
        .map_err(|e| Error::Message(e.to_string()))?;
    Ok(bundle)
}

/// The parent cgroup of the containers [`runc_steps`] makes (runc removes only their own).
pub const RUNC_STEPS_PARENT: &str = "bench-runc";

/// Removes [`RUNC_STEPS_PARENT`] from every hierarchy when dropped.
pub struct RuncStepsCgroups;

impl Drop for RuncStepsCgroups {
    fn drop(&mut self) {
        ctrd_testbed::cleanup::remove_empty_cgroups(RUNC_STEPS_PARENT);
    }
}

/// Runs `runc --root ROOT ARGS...`, failing with runc's message if it fails.
///
/// Its output goes to a file, not a pipe: a created container keeps runc's stdio open, so
/// reading a pipe to its end would wait for the container.
fn runc(root: &Path, args: &[&OsStr]) -> Result<(), Error> {
    go_on()?;
    let mut log = tempfile::tempfile().map_err(|e| Error::io(Path::new("tempfile"), e))?;
    let output = log
        .try_clone()
        .map_err(|e| Error::io(Path::new("tempfile"), e))?;
    let status = Command::new("runc")
        .arg("--root")
        .arg(root)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(output)
        .status()
        .map_err(|e| Error::Message(format!("runc: {e}")))?;
    if status.success() {
        return Ok(());
    }
    let mut message = String::new();
    let _ = log
        .seek(std::io::SeekFrom::Start(0))
        .and_then(|_| log.read_to_string(&mut message));
    Err(Error::Message(format!(
        "runc {args:?} failed ({status}): {}",
        message.trim()
    )))
}

/// The runc commands a shim runs for one `ctr run --rm … /bin/true`, timed directly: `runc
/// create`, `runc start`, the wait for the process to end, `runc delete`.
fn runc_steps(root: &Path, bundle: &Bundle, id: &str) -> Result<Duration, Error> {
    bundle
        .edit_spec(|spec| {
            spec["linux"]["cgroupsPath"] = format!("/{RUNC_STEPS_PARENT}/{id}").into()
        })
        .map_err(|e| Error::Message(e.to_string()))?;
    let pid_file = bundle.path().join("init.pid");
    let steps = || -> Result<Duration, Error> {
        let t = Instant::now();
        runc(
            root,
            &[
                "create".as_ref(),
                "--bundle".as_ref(),
                bundle.path().as_os_str(),
                "--pid-file".as_ref(),
                pid_file.as_os_str(),
                id.as_ref(),
            ],
        )?;
        let pid = std::fs::read_to_string(&pid_file)
            .map_err(|e| Error::io(&pid_file, e))?
            .trim()
            .parse::<i32>()
            .ok()
            .and_then(rustix::process::Pid::from_raw)
            .ok_or_else(|| Error::Message(format!("{}: no pid", pid_file.display())))?;
        // Not our child (runc's), so a pidfd tells when it is gone.
        let pidfd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())
            .map_err(|e| Error::io(&pid_file, e.into()))?;
        runc(root, &["start".as_ref(), id.as_ref()])?;
        let mut fds = [rustix::event::PollFd::new(
            &pidfd,
            rustix::event::PollFlags::IN,
        )];
        let limit = rustix::event::Timespec {
            tv_sec: 10,
            tv_nsec: 0,
        };
        rustix::event::poll(&mut fds, Some(&limit)).map_err(|e| Error::io(&pid_file, e.into()))?;
        runc(root, &["delete".as_ref(), id.as_ref()])?;
        Ok(t.elapsed())
    };
    let result = steps();
    if result.is_err() {
        let _ = runc(root, &["delete".as_ref(), "--force".as_ref(), id.as_ref()]);
    }
    result
}

/// The start figures: `ctr run --rm … /bin/true` through each shim (alternating which goes
/// first), through the no-runc shim, runc's own steps, and plain `runc run`.
pub fn start(
    subjects: [&Subject<'_>; 2],
    floor: &Subject<'_>,
    rootfs: &str,
    runs: usize,
    runc_root: &Path,
    steps_bundle: &Bundle,
) -> Result<(WithRunc, Floor), Error> {
    let plain = Bundle::busybox(&["/bin/true"]).map_err(|e| Error::Message(e.to_string()))?;
    let mut shims = [Vec::new(), Vec::new()];
    let (mut no_runc, mut steps, mut plain_runc) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..runs {
        let id = format!("start-{i}");
        for k in order(i) {
            shims[k].push(ms(subjects[k].timed(&ctr_run(
                RUNC_RUNTIME,
                rootfs,
                &id,
                false,
            ))?));
        }
        no_runc.push(ms(floor.timed(&ctr_run(
            FLOOR_RUNTIME,
            rootfs,
            &id,
            false,
        ))?));
        steps.push(ms(runc_steps(
            runc_root,
            steps_bundle,
            &format!("steps-{i}"),
        )?));
        let t = Instant::now();
        runc(
            runc_root,
            &[
                "run".as_ref(),
                "--bundle".as_ref(),
                plain.path().as_os_str(),
                format!("runc-{i}").as_ref(),
            ],
        )?;
        plain_runc.push(ms(t.elapsed()));
    }
    let [ours, go] = shims;
    Ok((
        WithRunc {
            ours: median(ours),
            go: median(go),
            runc: median(plain_runc),
        },
        Floor {
            no_runc_shim: median(no_runc),
            runc_steps: median(steps),
        },
    ))
}

/// The exec figures: `ctr task exec … /bin/true` into each shim's running `exec-target`, into
/// the no-runc shim's, and `runc exec` run directly into our shim's container.
pub fn exec(
    subjects: [&Subject<'_>; 2],
    floor: &Subject<'_>,
    runs: usize,
) -> Result<(Pair, Floor), Error> {
    let mut shims = [Vec::new(), Vec::new()];
    let (mut no_runc, mut steps) = (Vec::new(), Vec::new());
    let ours_runc_root = ctrd_testbed::runc_root(&subjects[0].ns);
    for i in 0..runs {
        let id = format!("e{i}");
        let exec = [
            "tasks",
            "exec",
            "--exec-id",
            id.as_str(),
            "exec-target",
            "/bin/true",
        ];
        for k in order(i) {
            shims[k].push(ms(subjects[k].timed(&exec)?));
        }
        no_runc.push(ms(floor.timed(&exec)?));
        let t = Instant::now();
        runc(
            &ours_runc_root,
            &[
                "exec".as_ref(),
                "exec-target".as_ref(),
                "/bin/true".as_ref(),
            ],
        )?;
        steps.push(ms(t.elapsed()));
    }
    Ok((
        Pair::median_of(shims),
        Floor {
            no_runc_shim: median(no_runc),
            runc_steps: median(steps),
        },
    ))
}
