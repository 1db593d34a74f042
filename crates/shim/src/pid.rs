//! Process ids, one type for the kernel's (`i32`, as `waitpid` and `kill` take them) and
//! containerd's (`u32`, as the task API carries them), so no shim casts between the two.

use std::fmt;
use std::num::NonZeroU32;

/// The id of a live or reaped process: always positive, so it never means "every process"
/// (`-1`) or "my process group" (`0`) to `kill`.
///
/// ```
/// use ctrd_shim::Pid;
///
/// let pid = Pid::try_from(4242u32).expect("a valid pid");
/// assert_eq!(pid.as_raw(), 4242i32);
/// assert_eq!(u32::from(pid), 4242);
/// assert!(Pid::try_from(0u32).is_err());
/// assert!(Pid::from_raw(-1).is_none());
/// // containerd says 0 for "no process yet".
/// assert_eq!(Pid::to_proto(None), 0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Pid(NonZeroU32);

/// A number that is not a process id (zero, negative, or above `i32::MAX`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0} is not a process id")]
pub struct InvalidPid(pub i64);

impl Pid {
    /// The pid from the kernel's signed form; `None` for zero or negative values.
    pub fn from_raw(raw: i32) -> Option<Pid> {
        u32::try_from(raw).ok().and_then(NonZeroU32::new).map(Pid)
    }

    /// The kernel's signed form, as `kill(2)` and `waitpid(2)` take it.
    pub fn as_raw(self) -> i32 {
        // Both constructors keep the value within 1..=i32::MAX.
        i32::try_from(self.0.get()).unwrap_or(i32::MAX)
    }

    /// The process's pid in the form containerd's messages carry, 0 for none.
    pub fn to_proto(pid: Option<Pid>) -> u32 {
        pid.map_or(0, u32::from)
    }

    /// Sends `signal` to the process.
    pub fn signal(self, signal: nix::sys::signal::Signal) -> nix::Result<()> {
        nix::sys::signal::kill(self.into(), signal)
    }
}

impl TryFrom<u32> for Pid {
    type Error = InvalidPid;

    fn try_from(value: u32) -> Result<Pid, InvalidPid> {
        i32::try_from(value)
            .ok()
            .and_then(Pid::from_raw)
            .ok_or(InvalidPid(value.into()))
    }
}

impl TryFrom<i32> for Pid {
    type Error = InvalidPid;

    fn try_from(value: i32) -> Result<Pid, InvalidPid> {
        Pid::from_raw(value).ok_or(InvalidPid(value.into()))
    }
}

impl From<Pid> for u32 {
    fn from(pid: Pid) -> u32 {
        pid.0.get()
    }
}

impl From<Pid> for nix::unistd::Pid {
    fn from(pid: Pid) -> nix::unistd::Pid {
        nix::unistd::Pid::from_raw(pid.as_raw())
    }
}

impl fmt::Display for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
