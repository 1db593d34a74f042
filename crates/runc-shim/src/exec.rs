//! Starting an exec: its spec, its stdio and terminal, and `runc exec --detach`, run without
//! the service lock (the exec stays `Defined` in its container until this returns).

use std::path::PathBuf;

use ctrd_runc::{AsyncRunc, ExecOptions};
use ctrd_shim::{Pid, ServeContext};

use crate::console::Console;
use crate::create::{attach, console_socket, runc_pid};
use crate::error::Error;
use crate::stdio::{self, Stdio, StdioHandles};

/// An exec to start, as read from its container under the lock.
#[derive(Debug)]
pub struct Launch {
    /// The container id.
    pub id: String,
    /// The exec id.
    pub exec_id: String,
    /// The container's runc.
    pub runc: AsyncRunc,
    /// The container's bundle (the pid file goes there).
    pub bundle: PathBuf,
    /// The exec's stdio.
    pub stdio: Stdio,
    /// The exec's process spec (JSON of an OCI `Process`).
    pub spec: Vec<u8>,
}

/// A started exec.
#[derive(Debug)]
pub struct Launched {
    /// Its pid.
    pub pid: Pid,
    /// The shim's ends of its stdio.
    pub handles: StdioHandles,
    /// Its terminal, if it has one.
    pub console: Option<Console>,
}

/// Starts the exec; on failure nothing of it is left running.
pub async fn start(ctx: &ServeContext, launch: Launch) -> Result<Launched, Error> {
    let process = crate::validate::json_object("exec spec", &launch.spec)?;
    let driver = stdio::LogDriverContext {
        id: &launch.id,
        namespace: &ctx.namespace,
        reaper: &ctx.reaper,
    };
    let (io, handles) = stdio::open(&launch.stdio, None, &driver)
        .await
        .map_err(|e| Error::Stdio {
            id: launch.id.clone(),
            reason: e.0,
        })?;
    let socket = console_socket(&launch.id, launch.stdio.terminal)?;
    let pid_file = launch.bundle.join(format!("{}.pid", launch.exec_id));
    // An earlier exec of the same id left its file: it must not be taken for this one's.
    let _ = std::fs::remove_file(&pid_file);
    let pid = launch
        .runc
        .exec_detached(
            &launch.id,
            &process,
            ExecOptions {
                io: Some(io),
                console_socket: socket.as_ref().map(|s| s.path().to_owned()),
                pid_file: Some(pid_file.clone()),
                ..Default::default()
            },
        )
        .await
        .inspect_err(|e| {
            if e.is_timeout() {
                end_orphan(&launch.id, &pid_file);
            }
        })?;
    let pid = runc_pid(&launch.id, pid)?;
    let console = match socket {
        Some(socket) => match attach(&launch.id, socket, &launch.stdio).await {
            Ok(console) => Some(console),
            Err(e) => {
                // Not yet known to the container, it would run unmanaged: end it.
                let _ = pid.signal(nix::sys::signal::Signal::SIGKILL);
                return Err(e);
            }
        },
        None => None,
    };
    Ok(Launched {
        pid,
        handles,
        console,
    })
}

/// A `runc exec` killed at the request's deadline may have started the process already (it
/// writes the pid file once it has): nobody would manage it, so it is ended.
fn end_orphan(id: &str, pid_file: &std::path::Path) {
    let Some(pid) = std::fs::read_to_string(pid_file)
        .ok()
        .and_then(|text| text.trim().parse::<i32>().ok())
        .and_then(Pid::from_raw)
    else {
        return;
    };
    tracing::warn!(%id, %pid, "ending the process of a runc exec killed at the deadline");
    let _ = pid.signal(nix::sys::signal::Signal::SIGKILL);
}
