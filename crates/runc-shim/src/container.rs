//! A container as the shim holds it: its init process, its execs, its root filesystem and
//! the runc that drives it (as Go's `runc.Container`, with `pkg/process` in
//! [`process`](crate::process)).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use ctrd_api::containerd::runc::v1::Options;
use ctrd_api::prost_types::Timestamp;
use ctrd_runc::AsyncRunc;

use crate::cgroup::Figures;
use crate::error::{Error, process_name};
use crate::process::{Process, State};
use crate::rootfs::Rootfs;
use crate::stdio::Stdio;

/// One container of this shim.
#[derive(Debug)]
pub struct Container {
    /// Its id.
    pub id: String,
    /// Its bundle folder.
    pub bundle: PathBuf,
    /// The mounts made at `Create`; unmounted when the container is dropped.
    pub rootfs: Option<Rootfs>,
    /// runc, with the options of this container.
    pub runc: AsyncRunc,
    /// Its init process.
    pub init: Process,
    /// Its execs, by exec id.
    pub execs: HashMap<String, Process>,
    /// No pid namespace of its own: its processes outlive init unless killed.
    pub shared_pid_ns: bool,
    /// Init has exited while execs still run: its exit (status, time) is published after
    /// theirs, as containerd expects.
    pub init_exit: Option<(u32, Timestamp)>,
    /// Created from a checkpoint: `Start` restores it, with the stdio opened at `Create`.
    pub restore: Option<PendingRestore>,
    /// Its cgroup, found once its init process exists; `Stats` reads its files.
    pub cgroup: Option<Figures>,
    /// Held across the runc calls that end the container (`kill` of init, `delete`), as the
    /// Go shim's process lock is: a `Delete` waits for a `Kill` in flight, so the `Kill` is
    /// answered before the shim can be shut down under it.
    pub life: Arc<tokio::sync::Mutex<()>>,
}

/// What `Start` needs to restore a container created from a checkpoint.
#[derive(Debug)]
pub struct PendingRestore {
    /// The checkpoint's image folder.
    pub image_path: PathBuf,
    /// The init process's stdio, opened at `Create`.
    pub io: ctrd_runc::ProcessIo,
    /// The socket runc sends the terminal to, for a container with one.
    pub console_socket: Option<ctrd_runc::ConsoleSocket>,
    /// The runc options of the container.
    pub options: Options,
}

impl Container {
    /// The process `exec_id` (the init process for an empty id).
    pub fn process(&self, exec_id: &str) -> Result<&Process, Error> {
        if exec_id.is_empty() {
            Ok(&self.init)
        } else {
            self.execs
                .get(exec_id)
                .ok_or_else(|| self.exec_not_found(exec_id))
        }
    }

    /// The process `exec_id`, mutable.
    pub fn process_mut(&mut self, exec_id: &str) -> Result<&mut Process, Error> {
        if exec_id.is_empty() {
            Ok(&mut self.init)
        } else {
            let id = &self.id;
            self.execs
                .get_mut(exec_id)
                .ok_or_else(|| Error::ExecNotFound {
                    id: id.clone(),
                    exec_id: exec_id.to_owned(),
                })
        }
    }

    fn exec_not_found(&self, exec_id: &str) -> Error {
        Error::ExecNotFound {
            id: self.id.clone(),
            exec_id: exec_id.to_owned(),
        }
    }

    /// Whether the container runs: started, and init has not exited.
    pub fn is_running(&self) -> bool {
        matches!(
            self.init.state(),
            State::Running { .. } | State::Paused { .. }
        ) && self.init_exit.is_none()
    }

    /// Whether any exec still has a live process.
    pub fn has_live_execs(&self) -> bool {
        self.execs.values().any(|e| e.state().is_live())
    }

    /// Adds a defined (not yet started) exec; the container must run.
    pub fn add_exec(&mut self, exec_id: &str, stdio: Stdio, spec: Vec<u8>) -> Result<(), Error> {
        if self.execs.contains_key(exec_id) {
            return Err(Error::ExecExists {
                id: self.id.clone(),
                exec_id: exec_id.to_owned(),
            });
        }
        if !self.init.state().is_live() || self.init_exit.is_some() {
            return Err(Error::NotRunning {
                id: self.id.clone(),
            });
        }
        self.execs.insert(
            exec_id.to_owned(),
            Process::new(exec_id.to_owned(), stdio, Some(spec), State::Defined),
        );
        Ok(())
    }

    /// Removes a finished exec; its final state.
    pub fn remove_exec(&mut self, exec_id: &str) -> Result<State, Error> {
        let state = self.process(exec_id)?.state();
        if state.is_live() {
            return Err(Error::StillRunning {
                process: process_name(&self.id, exec_id),
            });
        }
        self.execs.remove(exec_id);
        Ok(state)
    }
}
