//! `cargo xtask bench --only kubelet` with `CTRD_BENCH_POD_PROFILE=DIR`: where a pod start goes,
//! per shim, from the kernel's own record of every process started and ended.
//!
//! While the pods start, `perf record -a` takes the scheduler's `sched_process_exec` and
//! `sched_process_exit` tracepoints on the monotonic clock (no process is stopped or slowed, as
//! `strace` would), and the bench notes each pod's start and end on the same clock. Each pod's
//! time is then split by what was running: `runc` commands (each from its exec to its last
//! thread's exit; `runc init` is not counted, it becomes the container), CNI plugins (anything
//! run from a `cni` folder, the `iptables` they start included), the shim's `start` action (the
//! short-lived process containerd runs to launch a shim), and the rest: containerd's own work,
//! the serving shim's, and the CRI round trips. runc and CNI are what no shim takes off a pod
//! start.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::median;
use crate::Error;

/// A process class the split counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Runc,
    Cni,
    ShimStart,
}

/// One pod's start on the monotonic clock (ns), and which shim it ran on.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub side: usize,
    pub start: u64,
    pub end: u64,
}

/// The monotonic clock `perf record -k CLOCK_MONOTONIC` stamps its events with, in ns.
pub fn now_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// A running `perf record` of process starts and ends, machine-wide.
pub struct Recorder {
    child: Child,
    data: PathBuf,
}

impl Recorder {
    /// Starts recording into `dir/pods.data`.
    pub fn start(dir: &Path) -> Result<Recorder, Error> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let data = dir.join("pods.data");
        let child = Command::new("perf")
            .args(["record", "-q", "-a", "-k", "CLOCK_MONOTONIC"])
            .args([
                "-e",
                "sched:sched_process_exec",
                "-e",
                "sched:sched_process_exit",
            ])
            .arg("-o")
            .arg(&data)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| Error::Message(format!("perf record: {e} (is perf installed?)")))?;
        // perf opens its events after it starts.
        std::thread::sleep(Duration::from_millis(500));
        Ok(Recorder { child, data })
    }

    /// Stops recording and prints the split of each shim's pod starts (`names` by side).
    pub fn finish(self, windows: &[Window], names: [&str; 2]) -> Result<(), Error> {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT);
        self.child
            .wait_with_output()
            .map_err(|e| Error::Message(format!("waiting for perf record: {e}")))?;
        let script = Command::new("perf")
            .args(["script", "--ns", "-F", "pid,tid,time,event,trace", "-i"])
            .arg(&self.data)
            .output()
            .map_err(|e| Error::Message(format!("perf script: {e}")))?;
        if !script.status.success() {
            return Err(Error::Message(format!(
                "perf script -i {}: {}",
                self.data.display(),
                String::from_utf8_lossy(&script.stderr).trim()
            )));
        }
        let spans = spans(&String::from_utf8_lossy(&script.stdout));
        print_split(windows, &spans, names);
        println!("(events: perf script -i {})", self.data.display());
        Ok(())
    }
}

/// One classified process's life, ns.
#[derive(Debug, Clone, Copy)]
struct Span {
    class: Class,
    start: u64,
    end: u64,
}

/// What a process started as, by the program's path.
fn classify(path: &str) -> Option<Class> {
    let name = path.rsplit('/').next().unwrap_or(path);
    if name == "runc" {
        Some(Class::Runc)
    } else if path.contains("/cni/") {
        Some(Class::Cni)
    } else if name.starts_with("containerd-shim") {
        Some(Class::ShimStart)
    } else {
        None
    }
}

/// The classified processes in `perf script` output (`PID/TID TIME: EVENT: TRACE` lines): each
/// from its first classified exec to the exit of its last thread. A process keeps its class
/// through later execs (runc re-executes itself from a sealed copy); processes that never
/// exit in the record (a serving shim) are left out.
fn spans(script: &str) -> Vec<Span> {
    let mut open: HashMap<u32, (Class, u64)> = HashMap::new();
    let mut done = Vec::new();
    for line in script.lines() {
        let Some((ids, rest)) = line.trim_start().split_once(char::is_whitespace) else {
            continue;
        };
        let Some(pid) = ids.split('/').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        let mut parts = rest.trim_start().splitn(3, ": ");
        let (Some(time), Some(event), Some(trace)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let Some(ns) = parse_ns(time.trim_end_matches(':')) else {
            continue;
        };
        if event.ends_with("sched_process_exec") {
            let path = trace
                .split_whitespace()
                .find_map(|f| f.strip_prefix("filename="))
                .unwrap_or("");
            if let (Some(class), false) = (classify(path), open.contains_key(&pid)) {
                open.insert(pid, (class, ns));
            }
        } else if event.ends_with("sched_process_exit")
            && trace.contains("group_dead=true")
            && let Some((class, start)) = open.remove(&pid)
        {
            done.push(Span {
                class,
                start,
                end: ns,
            });
        }
    }
    done
}

/// `SECONDS.NANOSECONDS` as ns.
fn parse_ns(time: &str) -> Option<u64> {
    let (s, n) = time.split_once('.')?;
    let n = format!("{n:0<9}");
    Some(s.parse::<u64>().ok()? * 1_000_000_000 + n.get(..9)?.parse::<u64>().ok()?)
}

/// The length (ns) of the union of `spans` (of the classes `keep` accepts) clipped to `window`.
fn covered(spans: &[Span], window: Window, keep: impl Fn(Class) -> bool) -> u64 {
    let mut parts: Vec<(u64, u64)> = spans
        .iter()
        .filter(|s| keep(s.class) && s.end > window.start && s.start < window.end)
        .map(|s| (s.start.max(window.start), s.end.min(window.end)))
        .collect();
    parts.sort_unstable();
    let (mut total, mut reach) = (0, window.start);
    for (start, end) in parts {
        let start = start.max(reach);
        if end > start {
            total += end - start;
            reach = end;
        }
    }
    total
}

/// Prints, per shim, the medians of each pod start's parts.
fn print_split(windows: &[Window], spans: &[Span], names: [&str; 2]) {
    let ms = |ns: u64| ns as f64 / 1e6;
    println!("\nWhere a pod start goes (perf record of process starts and ends, medians, ms):\n");
    println!(
        "| shim | pods | pod start | runc | CNI | shim `start` action | runc + CNI | the rest (containerd, serving shim, CRI) |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (side, name) in names.iter().enumerate() {
        let mine: Vec<Window> = windows.iter().copied().filter(|w| w.side == side).collect();
        let column =
            |f: &dyn Fn(Window) -> u64| median(mine.iter().map(|&w| ms(f(w))).collect::<Vec<_>>());
        let total = column(&|w| w.end - w.start);
        let runc = column(&|w| covered(spans, w, |c| c == Class::Runc));
        let cni = column(&|w| covered(spans, w, |c| c == Class::Cni));
        let start = column(&|w| covered(spans, w, |c| c == Class::ShimStart));
        let floor = column(&|w| covered(spans, w, |c| c != Class::ShimStart));
        let rest = column(&|w| (w.end - w.start) - covered(spans, w, |_| true));
        println!(
            "| {name} | {} | {total:.1} | {runc:.1} | {cni:.1} | {start:.1} | {floor:.1} | {rest:.1} |",
            mine.len()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCRIPT: &str = "\
 10/10   100.000000000: sched:sched_process_exec: filename=/usr/sbin/runc pid=10 old_pid=10
 10/10   100.001000000: sched:sched_process_exec: filename=/proc/self/fd/7 pid=10 old_pid=10
 11/11   100.002000000: sched:sched_process_exec: filename=/proc/self/exe pid=11 old_pid=11
 10/12   100.005000000: sched:sched_process_exit: comm=runc pid=12 prio=120 group_dead=false
 10/10   100.010000000: sched:sched_process_exit: comm=runc pid=10 prio=120 group_dead=true
 20/20   100.008000000: sched:sched_process_exec: filename=/usr/lib/cni/bridge pid=20 old_pid=20
 20/20   100.012000000: sched:sched_process_exit: comm=bridge pid=20 prio=120 group_dead=true
 30/30   100.020000000: sched:sched_process_exec: filename=/usr/bin/containerd-shim-ctrd-v2 pid=30 old_pid=30
 31/31   100.021000000: sched:sched_process_exec: filename=/usr/bin/containerd-shim-ctrd-v2 pid=31 old_pid=31
 30/30   100.022000000: sched:sched_process_exit: comm=containerd-shim pid=30 prio=120 group_dead=true
";

    #[test]
    fn processes_become_spans() {
        let spans = spans(SCRIPT);
        assert_eq!(spans.len(), 3, "{spans:?}");
        assert_eq!(spans[0].class, Class::Runc);
        assert_eq!(spans[0].end - spans[0].start, 10_000_000);
        let window = Window {
            side: 0,
            start: 100_000_000_000,
            end: 100_030_000_000,
        };
        // runc 0-10 ms and bridge 8-12 ms overlap: 12 ms of runc or CNI.
        assert_eq!(
            covered(&spans, window, |c| c != Class::ShimStart),
            12_000_000
        );
        assert_eq!(
            covered(&spans, window, |c| c == Class::ShimStart),
            2_000_000
        );
    }

    #[test]
    fn times_parse() {
        assert_eq!(parse_ns("5472.586969711"), Some(5_472_586_969_711));
        assert_eq!(parse_ns("1.5"), Some(1_500_000_000));
        assert_eq!(parse_ns("x"), None);
    }
}
