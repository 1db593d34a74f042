//! External snapshotter processes (proxy plugins) for tests and benchmarks.

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::{Error, cleanup};

/// A snapshotter binary that takes `--root DIR --address SOCKET`, serving from a private
/// folder; dropping it stops the process (SIGTERM, then SIGKILL), unmounts whatever is left
/// below the folder and removes it.
#[derive(Debug)]
pub struct SnapshotterProcess {
    binary: PathBuf,
    args: Vec<String>,
    child: Option<Child>,
    dir: tempfile::TempDir,
    /// The root folder when the caller chose it (else `root` in `dir`).
    root: Option<PathBuf>,
}

impl SnapshotterProcess {
    /// Starts `binary` with its root and socket in a new folder, plus `args`, and waits for
    /// its socket.
    pub fn start(binary: &Path, args: &[&str]) -> Result<SnapshotterProcess, Error> {
        SnapshotterProcess::start_at(binary, None, args)
    }

    /// Starts `binary` as [`start`](Self::start) does, with `root` as its root folder (on a
    /// [`SmallFs`](crate::SmallFs), say); the socket and log stay in a private folder.
    pub fn start_on(
        binary: &Path,
        root: &Path,
        args: &[&str],
    ) -> Result<SnapshotterProcess, Error> {
        SnapshotterProcess::start_at(binary, Some(root), args)
    }

    fn start_at(
        binary: &Path,
        root: Option<&Path>,
        args: &[&str],
    ) -> Result<SnapshotterProcess, Error> {
        crate::require_root()?;
        if !binary.is_file() {
            return Err(Error::Missing {
                what: "the snapshotter binary".into(),
                path: binary.to_owned(),
            });
        }
        let dir = tempfile::Builder::new()
            .prefix("ctrd-snap-")
            .tempdir_in("/tmp")
            .map_err(|e| Error::io("/tmp", e))?;
        let mut process = SnapshotterProcess {
            binary: binary.to_owned(),
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            child: None,
            dir,
            root: root.map(Path::to_owned),
        };
        process.spawn()?;
        Ok(process)
    }

    fn spawn(&mut self) -> Result<(), Error> {
        let log_path = self.log_path();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| Error::io(&log_path, e))?;
        let log_err = log.try_clone().map_err(|e| Error::io(&log_path, e))?;
        let child = Command::new(&self.binary)
            .arg("--root")
            .arg(self.root())
            .arg("--address")
            .arg(self.address())
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(|e| Error::io(&self.binary, e))?;
        self.child = Some(child);
        self.wait_ready()
    }

    fn wait_ready(&mut self) -> Result<(), Error> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                return Err(self.start_error(format!("it exited with {status}")));
            }
            if UnixStream::connect(self.address()).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(self.start_error("its socket did not appear within 20 s".into()));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn start_error(&self, reason: String) -> Error {
        let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        Error::DaemonStart {
            daemon: self.binary.display().to_string(),
            reason,
            log,
        }
    }

    /// The snapshotter's root folder.
    pub fn root(&self) -> PathBuf {
        self.root
            .clone()
            .unwrap_or_else(|| self.dir.path().join("root"))
    }

    /// The socket it serves on.
    pub fn address(&self) -> PathBuf {
        self.dir.path().join("snapshotter.sock")
    }

    /// Its log (stdout and stderr).
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("snapshotter.log")
    }

    /// Its process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills it with SIGKILL (a crash: no cleanup of its own) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops it with SIGTERM and returns its exit status (SIGKILL after 10 s).
    pub fn stop(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = child.kill();
        child.wait().ok()
    }

    /// Starts it again on the same root and socket (after [`kill`](Self::kill) or
    /// [`stop`](Self::stop)).
    pub fn restart(&mut self) -> Result<(), Error> {
        self.stop();
        self.spawn()
    }
}

impl Drop for SnapshotterProcess {
    fn drop(&mut self) {
        self.stop();
        cleanup::unmount_under(self.dir.path());
        if let Some(root) = &self.root {
            cleanup::unmount_under(root);
        }
    }
}
