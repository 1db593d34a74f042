//! A private OCI registry (Debian's `docker-registry`) on 127.0.0.1, plain HTTP, and pushing
//! test images into it with `skopeo`.

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::Error;

/// A registry on a free port of 127.0.0.1, stopped and removed when dropped.
#[derive(Debug)]
pub struct Registry {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Registry {
    /// Starts `docker-registry` with its storage in a temporary folder.
    pub fn start() -> Result<Registry, Error> {
        let program = Path::new("/usr/bin/docker-registry");
        if !program.is_file() {
            return Err(Error::Missing {
                what: "docker-registry".into(),
                path: program.into(),
            });
        }
        let dir = tempfile::Builder::new()
            .prefix("ctrd-registry-")
            .tempdir_in("/tmp")
            .map_err(|e| Error::io("/tmp", e))?;
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| Error::io("127.0.0.1:0", e))?
            .port();
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n\
                 http:\n  addr: 127.0.0.1:{port}\n",
                dir.path().join("data").display()
            ),
        )
        .map_err(|e| Error::io(&config, e))?;
        let log = dir.path().join("registry.log");
        let out = std::fs::File::create(&log).map_err(|e| Error::io(&log, e))?;
        let err = out.try_clone().map_err(|e| Error::io(&log, e))?;
        let child = Command::new(program)
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| Error::io(program, e))?;
        let mut registry = Registry {
            child,
            port,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline || matches!(registry.child.try_wait(), Ok(Some(_))) {
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                return Err(Error::io(
                    program,
                    std::io::Error::other(format!("registry did not start: {text}")),
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(registry)
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Pushes the OCI image archive at `archive` as `repository:tag` with `skopeo`; returns
    /// the reference to pull (`127.0.0.1:PORT/repository:tag`).
    pub fn push(&self, archive: &Path, repository: &str, tag: &str) -> Result<String, Error> {
        let reference = format!("{}/{repository}:{tag}", self.host());
        let out = Command::new("skopeo")
            .args(["copy", "--quiet", "--dest-tls-verify=false"])
            .arg(format!("oci-archive:{}", archive.display()))
            .arg(format!("docker://{reference}"))
            .stdin(Stdio::null())
            .output()
            .map_err(|_| Error::Missing {
                what: "skopeo".into(),
                path: "skopeo".into(),
            })?;
        if !out.status.success() {
            return Err(Error::io(
                "skopeo copy",
                std::io::Error::other(String::from_utf8_lossy(&out.stderr).into_owned()),
            ));
        }
        Ok(reference)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
