//! Out-of-memory kills, reported as `TaskOOM` without a runc process per container: an
//! eventfd on `memory.oom_control` on cgroup v1, `memory.events` watched with inotify on v2.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd};
use std::path::PathBuf;

use ctrd_api::containerd::events::TaskOom;
use ctrd_shim::Publisher;
use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use tokio::io::unix::AsyncFd;

/// The memory cgroup of `pid`, and whether it is a v2 (unified) one.
fn memory_cgroup(pid: u32) -> Option<(PathBuf, bool)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        if controllers.split(',').any(|c| c == "memory") {
            return Some((PathBuf::from(format!("/sys/fs/cgroup/memory{path}")), false));
        }
        if controllers.is_empty() && crate::metrics::unified_host() {
            return Some((PathBuf::from(format!("/sys/fs/cgroup{path}")), true));
        }
    }
    None
}

/// Publishes a `TaskOOM` for container `id` each time its memory cgroup (found through its
/// init process `pid`) kills for lack of memory, until the cgroup is gone.
pub fn watch(pid: u32, id: String, publisher: Publisher) {
    let Some((cgroup, unified)) = memory_cgroup(pid) else {
        tracing::warn!(%id, "no memory cgroup; OOM kills will not be reported");
        return;
    };
    let started = if unified {
        watch_v2(cgroup, id.clone(), publisher)
    } else {
        watch_v1(cgroup, id.clone(), publisher)
    };
    if let Err(e) = started {
        tracing::warn!(%id, error = %e, "cannot watch for OOM kills");
    }
}

fn watch_v1(cgroup: PathBuf, id: String, publisher: Publisher) -> std::io::Result<()> {
    let control = File::open(cgroup.join("memory.oom_control"))?;
    let efd = EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)?;
    OpenOptions::new()
        .write(true)
        .open(cgroup.join("cgroup.event_control"))?
        .write_all(format!("{} {}", efd.as_fd().as_raw_fd(), control.as_raw_fd()).as_bytes())?;
    // SAFETY: the AsyncFd owns the eventfd from here on; its fd stays open and the same until
    // the AsyncFd is dropped.
    let efd = unsafe { AsyncFd::register_with_interest(efd, tokio::io::Interest::READABLE) }
        .map_err(|e| e.into_parts().1)?;
    tokio::spawn(async move {
        let _control = control;
        loop {
            let Ok(mut guard) = efd.readable().await else {
                break;
            };
            match guard.try_io(|fd| fd.get_ref().read().map_err(std::io::Error::from)) {
                Ok(Ok(_)) => {}
                Ok(Err(_)) => break,
                Err(_would_block) => continue,
            }
            // The cgroup going away signals the eventfd too.
            if !cgroup.exists() {
                break;
            }
            let _ = publisher.publish(&TaskOom {
                container_id: id.clone(),
            });
        }
    });
    Ok(())
}

/// An inotify instance, as the raw fd tokio's reactor registers.
struct Watch(Inotify);

impl std::os::fd::AsRawFd for Watch {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

fn oom_kills(events: &std::path::Path) -> u64 {
    std::fs::read_to_string(events)
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

fn watch_v2(cgroup: PathBuf, id: String, publisher: Publisher) -> std::io::Result<()> {
    let events = cgroup.join("memory.events");
    let inotify = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK)?;
    inotify.add_watch(
        &events,
        AddWatchFlags::IN_MODIFY | AddWatchFlags::IN_DELETE_SELF,
    )?;
    // SAFETY: the AsyncFd owns the inotify instance from here on; its fd stays open and the
    // same until the AsyncFd is dropped.
    let inotify =
        unsafe { AsyncFd::register_with_interest(Watch(inotify), tokio::io::Interest::READABLE) }
            .map_err(|e| e.into_parts().1)?;
    let mut seen = oom_kills(&events);
    tokio::spawn(async move {
        loop {
            let Ok(mut guard) = inotify.readable().await else {
                break;
            };
            match guard.try_io(|i| i.get_ref().0.read_events().map_err(std::io::Error::from)) {
                Ok(Ok(_)) => {}
                Ok(Err(_)) => break,
                Err(_would_block) => continue,
            }
            if !events.exists() {
                break;
            }
            let now = oom_kills(&events);
            if now > seen {
                seen = now;
                let _ = publisher.publish(&TaskOom {
                    container_id: id.clone(),
                });
            }
        }
    });
    Ok(())
}
