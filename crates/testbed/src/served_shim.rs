//! A shim served the way containerd starts one (its `start` action, in a bundle laid out as
//! containerd's), without a containerd: for tests that speak ttrpc to a shim directly.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::Error;

/// A serving shim and its state folder; dropping it stops the shim (SIGTERM, then SIGKILL)
/// and removes the folder.
#[derive(Debug)]
pub struct ServedShim {
    dir: tempfile::TempDir,
    namespace: String,
    id: String,
    address: String,
}

impl ServedShim {
    /// Runs `binary start` for container `id` in namespace `namespace`, with a bundle (holding
    /// a minimal `config.json`) under a private state folder, and returns the serving shim.
    /// The containerd address it is given does not exist: its events go nowhere.
    pub fn start(binary: &Path, namespace: &str, id: &str) -> Result<ServedShim, Error> {
        crate::require_root()?;
        let dir = tempfile::Builder::new()
            .prefix("ctrd-served-")
            .tempdir_in("/run")
            .map_err(|e| Error::io("/run", e))?;
        let mut shim = ServedShim {
            dir,
            namespace: namespace.to_owned(),
            id: id.to_owned(),
            address: String::new(),
        };
        let bundle = shim.bundle();
        std::fs::create_dir_all(bundle.join("rootfs")).map_err(|e| Error::io(&bundle, e))?;
        let spec = serde_json::json!({
            "ociVersion": "1.0.2",
            "process": {"args": ["/bin/true"], "cwd": "/"},
            "root": {"path": "rootfs"},
        });
        std::fs::write(bundle.join("config.json"), spec.to_string())
            .map_err(|e| Error::io(&bundle, e))?;
        let mut child = Command::new(binary)
            .args(["-namespace", namespace, "-id", id, "-address"])
            .arg(shim.dir.path().join("containerd.sock"))
            .args(["-publish-binary", "/bin/true", "start"])
            .current_dir(&bundle)
            .env_remove("MAX_SHIM_VERSION")
            .env(
                "TTRPC_ADDRESS",
                shim.dir.path().join("containerd.sock.ttrpc"),
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| Error::io(binary, e))?;
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.write_all(b"");
        }
        let out = child.wait_with_output().map_err(|e| Error::io(binary, e))?;
        if !out.status.success() {
            return Err(Error::io(
                binary,
                std::io::Error::other(format!(
                    "start failed ({}): {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                )),
            ));
        }
        shim.address = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        Ok(shim)
    }

    /// The folder standing for containerd's state folder.
    pub fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// The container's bundle (`STATE/io.containerd.runtime.v2.task/NAMESPACE/ID`).
    pub fn bundle(&self) -> PathBuf {
        self.state()
            .join("io.containerd.runtime.v2.task")
            .join(&self.namespace)
            .join(&self.id)
    }

    /// The address the shim serves (`unix:///...`), as a ttrpc client takes it.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The socket file.
    pub fn socket(&self) -> PathBuf {
        PathBuf::from(self.address.trim_start_matches("unix://"))
    }

    /// The live shim processes serving this address, and their descendants.
    pub fn pids(&self) -> Vec<Pid> {
        let needle = self.dir.path().to_string_lossy().into_owned();
        let mut pids = crate::cleanup::processes_mentioning(&needle);
        pids.retain(|&pid| crate::cleanup::alive(pid));
        pids
    }
}

impl Drop for ServedShim {
    fn drop(&mut self) {
        for signal in [Signal::SIGTERM, Signal::SIGKILL] {
            let pids = self.pids();
            if pids.is_empty() {
                break;
            }
            for pid in pids {
                let _ = kill(pid, signal);
            }
            let deadline = Instant::now() + Duration::from_secs(3);
            while !self.pids().is_empty() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = std::fs::remove_file(self.socket());
    }
}
