//! Options of the commands that take more than an id.

use std::os::fd::OwnedFd;
use std::path::PathBuf;

use crate::io::ProcessIo;

/// Options of `create`, `run` and `restore` for the container's init process.
#[derive(Debug, Default)]
pub struct CreateOptions {
    /// The process's standard streams (ignored with a console socket). Default: `/dev/null`.
    pub io: Option<ProcessIo>,
    /// Where runc sends the terminal's master fd (`--console-socket`), for `terminal: true`
    /// specs; see [`ConsoleSocket`](crate::ConsoleSocket).
    pub console_socket: Option<PathBuf>,
    /// Where runc writes the process's pid (`--pid-file`); by default a private temporary
    /// file, read and removed by the wrapper.
    pub pid_file: Option<PathBuf>,
    /// Do not pivot_root into the rootfs (`--no-pivot`), for rootfs on a ramdisk.
    pub no_pivot: bool,
    /// Do not create a session keyring (`--no-new-keyring`).
    pub no_new_keyring: bool,
    /// Extra files the process gets as fds 3, 4, ... (`--preserve-fds`).
    pub extra_files: Vec<OwnedFd>,
}

/// Options of `exec`.
#[derive(Debug, Default)]
pub struct ExecOptions {
    /// The process's standard streams (ignored with a console socket). Default: `/dev/null`.
    pub io: Option<ProcessIo>,
    /// Where runc sends the terminal's master fd, for processes with `terminal: true`.
    pub console_socket: Option<PathBuf>,
    /// Where runc writes the process's pid; by default a private temporary file.
    pub pid_file: Option<PathBuf>,
    /// Extra files the process gets as fds 3, 4, ... (`--preserve-fds`).
    pub extra_files: Vec<OwnedFd>,
}

/// CRIU options shared by `checkpoint` and `restore`.
#[derive(Debug, Clone, Default)]
pub struct CriuOptions {
    /// Where the checkpoint images are (`--image-path`).
    pub image_path: PathBuf,
    /// Where CRIU puts its work files and logs (`--work-path`).
    pub work_path: Option<PathBuf>,
    /// Allow established TCP connections (`--tcp-established`).
    pub tcp_established: bool,
    /// Allow external unix sockets (`--ext-unix-sk`).
    pub ext_unix_sk: bool,
    /// Allow shell jobs (`--shell-job`).
    pub shell_job: bool,
    /// Handle file locks (`--file-locks`).
    pub file_locks: bool,
    /// How CRIU treats cgroups: `soft`, `full` or `strict` (`--manage-cgroups-mode`).
    pub manage_cgroups_mode: Option<String>,
    /// Namespaces to create empty instead of restoring (`--empty-ns`).
    pub empty_namespaces: Vec<String>,
    /// Deduplicate memory images (`--auto-dedup`).
    pub auto_dedup: bool,
    /// Restore memory pages lazily (`--lazy-pages`).
    pub lazy_pages: bool,
}

/// Options of `checkpoint`.
#[derive(Debug, Clone, Default)]
pub struct CheckpointOptions {
    /// What `checkpoint` and `restore` share.
    pub criu: CriuOptions,
    /// Images of a previous pre-dump (`--parent-path`).
    pub parent_path: Option<PathBuf>,
    /// Keep the container running (`--leave-running`).
    pub leave_running: bool,
    /// Dump memory only and leave the container running (`--pre-dump`).
    pub pre_dump: bool,
}

/// Options of `restore`.
#[derive(Debug, Default)]
pub struct RestoreOptions {
    /// What `checkpoint` and `restore` share.
    pub criu: CriuOptions,
    /// The restored init process's I/O, terminal, pid file and pivot options.
    pub create: CreateOptions,
    /// Do not make runc a subreaper (`--no-subreaper`).
    pub no_subreaper: bool,
}
