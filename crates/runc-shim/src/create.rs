//! `Create` (a container from its bundle, or one to be restored from a checkpoint at
//! `Start`) and that restore.
//!
//! Everything a failed `Create` made is released by ownership: the root filesystem by its
//! [`Rootfs`] guard, stdio by its handles, the console socket by its own drop, and the runc
//! container by the one explicit `runc delete`. Blocking steps (mounting, waiting for the
//! terminal) run on the blocking pool, never on the serving thread.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use ctrd_api::containerd::task::v2::CreateTaskRequest;
use ctrd_runc::{AsyncRunc, ConsoleSocket, CreateOptions, CriuOptions, RestoreOptions};
use ctrd_shim::{Pid, ServeContext};

use crate::cgroup::{Cgroup, Figures};
use crate::console::Console;
use crate::container::{Container, PendingRestore};
use crate::error::Error;
use crate::options;
use crate::process::{Process, State};
use crate::rootfs::Rootfs;
use crate::stdio::{self, Stdio};

/// Makes the container `req` asks for: created by runc (its init's pid known), or, for a
/// checkpoint, defined and waiting for `Start` to restore it.
pub async fn create(ctx: &ServeContext, req: CreateTaskRequest) -> Result<Container, Error> {
    crate::validate::create(&req)?;
    let bundle = PathBuf::from(&req.bundle);
    // Two small files in the bundle, read and written in place: a hop to the blocking pool
    // would cost more than they do.
    let opts = options::decode(req.options.as_ref());
    options::save(&opts, &bundle).map_err(|cause| Error::Io {
        id: req.id.clone(),
        context: "saving the runc options in the bundle",
        cause,
    })?;
    let shared_pid_ns = !has_pid_namespace(&bundle);
    let rootfs = mount_rootfs(&req, &bundle).await?;
    let runc = options::runc(&opts, &ctx.namespace, &bundle, Some(&ctx.reaper));
    let stdio = Stdio {
        stdin: req.stdin.clone(),
        stdout: req.stdout.clone(),
        stderr: req.stderr.clone(),
        terminal: req.terminal,
    };
    let owner = (opts.io_uid != 0 || opts.io_gid != 0).then_some((opts.io_uid, opts.io_gid));
    let driver = stdio::LogDriverContext {
        id: &req.id,
        namespace: &ctx.namespace,
        reaper: &ctx.reaper,
    };
    let (io, handles) = stdio::open(&stdio, owner, &driver)
        .await
        .map_err(|e| Error::Stdio {
            id: req.id.clone(),
            reason: e.0,
        })?;
    let console_socket = console_socket(&req.id, req.terminal)?;
    let mut init = Process::new(String::new(), stdio, None, State::Defined);
    init.handles = handles;
    let mut container = Container {
        id: req.id.clone(),
        bundle,
        rootfs: Some(rootfs),
        runc,
        init,
        execs: HashMap::new(),
        shared_pid_ns,
        init_exit: None,
        restore: None,
        cgroup: None,
        life: Default::default(),
    };
    if !req.checkpoint.is_empty() {
        // Restored at Start, as containerd expects a created task first.
        container.restore = Some(PendingRestore {
            image_path: PathBuf::from(&req.checkpoint),
            io,
            console_socket,
            options: opts,
        });
        return Ok(container);
    }
    let created = container
        .runc
        .create(
            &req.id,
            &container.bundle,
            CreateOptions {
                io: Some(io),
                console_socket: console_socket.as_ref().map(|s| s.path().to_owned()),
                pid_file: Some(container.bundle.join("init.pid")),
                no_pivot: opts.no_pivot_root,
                no_new_keyring: opts.no_new_keyring,
                ..Default::default()
            },
        )
        .await;
    let pid = match created {
        Ok(pid) => pid,
        Err(e) if e.is_timeout() => {
            // Killed part-way, runc may have left its state and a waiting `runc init`.
            delete_after_deadline(&container.runc, &req.id).await;
            return Err(e.into());
        }
        Err(e) => return Err(e.into()),
    };
    if let Err(e) = started(&mut container, pid, console_socket).await {
        // runc made a container: remove it before the guards release the rest.
        if let Err(deleted) = container.runc.delete(&req.id, true).await {
            tracing::warn!(id = %req.id, error = %deleted, "runc delete after a failed create");
        }
        return Err(e);
    }
    Ok(container)
}

/// `runc delete --force` of a container whose `runc create` was killed at the request's
/// deadline, run past that deadline, and to its end even if the request's handler is dropped
/// meanwhile (the ttrpc server drops it at the deadline).
pub async fn delete_after_deadline(runc: &AsyncRunc, id: &str) {
    let (runc, owned) = (runc.clone(), id.to_owned());
    let deleted = tokio::spawn(ctrd_runc::deadline::without_deadline(async move {
        runc.delete(&owned, true).await
    }));
    match deleted.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) if e.is_not_found() => {}
        Ok(Err(e)) => tracing::warn!(%id, error = %e, "runc delete after a killed runc create"),
        Err(e) => tracing::warn!(%id, error = %e, "runc delete after a killed runc create"),
    }
}

/// Mounts the rootfs `req` names on the blocking pool (mounting an overlay of many layers can
/// take a while); nothing to do, and no hop, when the bundle brings its own root.
async fn mount_rootfs(req: &CreateTaskRequest, bundle: &Path) -> Result<Rootfs, Error> {
    let mounts = req.rootfs.clone();
    let mounted = if mounts.is_empty() {
        Rootfs::mount(&mounts, bundle)
    } else {
        let bundle = bundle.to_owned();
        tokio::task::spawn_blocking(move || Rootfs::mount(&mounts, &bundle))
            .await
            .map_err(|e| Error::Io {
                id: req.id.clone(),
                context: "mounting the root filesystem",
                cause: std::io::Error::other(e),
            })?
    };
    mounted.map_err(|reason| Error::Mount {
        id: req.id.clone(),
        reason,
    })
}

/// Records the pid runc gave the init process and attaches its terminal.
async fn started(
    container: &mut Container,
    pid: u32,
    console_socket: Option<ConsoleSocket>,
) -> Result<(), Error> {
    let pid = runc_pid(&container.id, pid)?;
    container.cgroup = cgroup_of(&container.id, pid);
    if let Some(socket) = console_socket {
        container.init.console = Some(attach(&container.id, socket, &container.init.stdio).await?);
    }
    container
        .init
        .created(pid)
        .map_err(|transition| Error::InvalidState {
            process: format!("container {}", container.id),
            transition,
        })?;
    Ok(())
}

/// The cgroup of the container whose init is `pid`, found once so that `Stats` only reads
/// its files; `None` (and `Stats` asks runc) when it cannot be found.
pub fn cgroup_of(id: &str, pid: Pid) -> Option<Figures> {
    match Cgroup::of_process(pid.into()) {
        Ok(cgroup) => Some(Figures::new(cgroup)),
        Err(e) => {
            tracing::warn!(%id, error = %e, "no cgroup found; Stats will ask runc");
            None
        }
    }
}

/// The container `Start` restores from a checkpoint: what it needs, taken out of the
/// container (under the service lock) so the restore runs without it.
#[derive(Debug)]
pub struct Restore {
    /// The container id.
    pub id: String,
    /// Its bundle.
    pub bundle: PathBuf,
    /// Its runc.
    pub runc: AsyncRunc,
    /// Its init's stdio.
    pub stdio: Stdio,
    /// What `Create` prepared.
    pub pending: PendingRestore,
}

/// Restores the container (`runc restore --detach`); its init's pid and terminal.
pub async fn restore(restore: Restore) -> Result<(Pid, Option<Console>), Error> {
    let Restore {
        id,
        bundle,
        runc,
        stdio,
        pending,
    } = restore;
    let pid = runc
        .restore(
            &id,
            &bundle,
            RestoreOptions {
                criu: CriuOptions {
                    image_path: pending.image_path,
                    work_path: (!pending.options.criu_work_path.is_empty())
                        .then(|| PathBuf::from(&pending.options.criu_work_path)),
                    ..Default::default()
                },
                create: CreateOptions {
                    io: Some(pending.io),
                    console_socket: pending.console_socket.as_ref().map(|s| s.path().to_owned()),
                    pid_file: Some(bundle.join("init.pid")),
                    no_pivot: pending.options.no_pivot_root,
                    no_new_keyring: pending.options.no_new_keyring,
                    ..Default::default()
                },
                no_subreaper: false,
            },
        )
        .await?;
    let pid = runc_pid(&id, pid)?;
    let console = match pending.console_socket {
        Some(socket) => Some(attach(&id, socket, &stdio).await?),
        None => None,
    };
    Ok((pid, console))
}

/// A socket to receive the terminal on, for a process that has one.
pub fn console_socket(id: &str, terminal: bool) -> Result<Option<ConsoleSocket>, Error> {
    terminal
        .then(ConsoleSocket::new)
        .transpose()
        .map_err(|cause| Error::Io {
            id: id.to_owned(),
            context: "making the console socket",
            cause: std::io::Error::other(cause),
        })
}

/// Receives the terminal runc sent and copies it to and from the process's FIFOs.
pub async fn attach(id: &str, socket: ConsoleSocket, stdio: &Stdio) -> Result<Console, Error> {
    Console::receive(socket, &stdio.stdin, &stdio.stdout)
        .await
        .map_err(|cause| Error::Io {
            id: id.to_owned(),
            context: "receiving the terminal from runc",
            cause,
        })
}

/// A pid runc wrote, as a [`Pid`].
pub fn runc_pid(id: &str, pid: u32) -> Result<Pid, Error> {
    Pid::try_from(pid).map_err(|e| Error::Io {
        id: id.to_owned(),
        context: "reading runc's pid file",
        cause: std::io::Error::other(e),
    })
}

/// Whether the bundle's spec gives the container a pid namespace of its own.
fn has_pid_namespace(bundle: &Path) -> bool {
    std::fs::read(bundle.join("config.json")).map_or(true, |config| spec_has_pid_namespace(&config))
}

/// Whether the runtime spec in `config` (the bytes of `config.json`) gives the container a pid
/// namespace of its own.
pub(crate) fn spec_has_pid_namespace(config: &[u8]) -> bool {
    let spec: serde_json::Value = serde_json::from_slice(config).unwrap_or_default();
    spec["linux"]["namespaces"].as_array().is_some_and(|ns| {
        ns.iter()
            .any(|n| n["type"] == "pid" && n["path"].as_str().unwrap_or("").is_empty())
    })
}
