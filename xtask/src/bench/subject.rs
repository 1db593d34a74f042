//! The shims under test: each in its own namespace of a private containerd, driven with `ctr`.

use std::ffi::OsStr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ctrd_testbed::Containerd;

use super::go_on;
use crate::Error;

/// The runtime our runc shim and Debian's Go shim answer to.
pub const RUNC_RUNTIME: &str = "io.containerd.runc.v2";
/// The runtime of our chroot example shim: the floor, a shim that runs no runc.
pub const FLOOR_RUNTIME: &str = "io.containerd.chroot.v2";

/// One shim under test, in its own namespace of a private daemon.
pub struct Subject<'a> {
    /// Its name in results and errors.
    pub name: &'static str,
    /// The daemon it runs under.
    pub containerd: &'a Containerd,
    /// Its namespace.
    pub ns: String,
}

impl Subject<'_> {
    /// `ctr` in the subject's namespace.
    pub fn ctr<S: AsRef<OsStr>>(&self, args: &[S]) -> Command {
        let mut c = self
            .containerd
            .ctr()
            .expect("the daemon's ctr exists once started");
        c.args(["--namespace", &self.ns]).args(args);
        c.stdin(Stdio::null());
        c
    }

    /// Runs `ctr ARGS`, failing with its message.
    pub fn ok<S: AsRef<OsStr>>(&self, args: &[S]) -> Result<(), Error> {
        go_on()?;
        let out = self
            .ctr(args)
            .output()
            .map_err(|e| Error::Message(format!("ctr: {e}")))?;
        if out.status.success() {
            Ok(())
        } else {
            let args: Vec<_> = args.iter().map(|a| a.as_ref().to_string_lossy()).collect();
            Err(Error::Message(format!(
                "{}: ctr {args:?} failed: {}",
                self.name,
                String::from_utf8_lossy(&out.stderr)
            )))
        }
    }

    /// How long `ctr ARGS` takes.
    pub fn timed<S: AsRef<OsStr>>(&self, args: &[S]) -> Result<Duration, Error> {
        let start = Instant::now();
        self.ok(args)?;
        Ok(start.elapsed())
    }

    /// Pids of the runc shims serving this subject's daemon.
    pub fn shim_pids(&self) -> Vec<u32> {
        let address = self.containerd.grpc_address().display().to_string();
        processes()
            .into_iter()
            .filter(|(_, cmd)| cmd.contains("containerd-shim-runc-v2") && cmd.contains(&address))
            .map(|(pid, _)| pid)
            .collect()
    }

    /// Kills and removes the containers `ids`.
    pub fn remove_all(&self, ids: &[String]) {
        for id in ids {
            let _ = self.ctr(&["tasks", "kill", "-s", "SIGKILL", id]).output();
        }
        for id in ids {
            for _ in 0..100 {
                let done = self
                    .ctr(&["tasks", "delete", id])
                    .output()
                    .map(|o| o.status.success())
                    .unwrap_or(false);
                if done {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = self.ctr(&["containers", "rm", id]).output();
        }
    }
}

/// `ctr run` arguments for container `id` of `runtime` on `rootfs`: detached and running
/// `sleep`, or running `/bin/true` and removed after it.
pub fn ctr_run(runtime: &str, rootfs: &str, id: &str, detached: bool) -> Vec<String> {
    let (mode, command): (&str, &[&str]) = if detached {
        ("-d", &["/bin/sleep", "3600"])
    } else {
        ("--rm", &["/bin/true"])
    };
    let runtime = format!("--runtime={runtime}");
    ["run", mode, runtime.as_str(), "--rootfs", rootfs, id]
        .iter()
        .chain(command)
        .map(|a| (*a).to_owned())
        .collect()
}

/// Every process: pid and command line.
fn processes() -> Vec<(u32, String)> {
    std::fs::read_dir("/proc")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter_map(|e| {
                    let pid = e.file_name().to_str()?.parse().ok()?;
                    let cmd = std::fs::read(e.path().join("cmdline")).ok()?;
                    Some((pid, String::from_utf8_lossy(&cmd).replace('\0', " ")))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// PSS and RSS (KiB) and threads of a process.
pub fn footprint(pid: u32) -> (u64, u64, u64) {
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    let field = |name: &str| {
        rollup
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let threads = std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| d.count() as u64)
        .unwrap_or(0);
    (field("Pss:"), field("Rss:"), threads)
}

/// CPU time `pid` has spent since it started, all its live threads, in ms (the first field of
/// each `/proc/PID/task/TID/schedstat`, in ns: exact, unlike the 10 ms ticks of `stat`).
pub fn cpu_since_boot_ms(pid: u32) -> f64 {
    let ns: u64 = std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter_map(|e| std::fs::read_to_string(e.path().join("schedstat")).ok())
                .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0);
    ns as f64 / 1e6
}
