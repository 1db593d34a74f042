//! `ctrd-log-driver` started exactly as a shim starts it: fds 3, 4 and 5, `CONTAINER_ID`
//! and `CONTAINER_NAMESPACE` as its whole environment, options as `key value` pairs.

use std::io::Read;
use std::os::fd::OwnedFd;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use command_fds::{CommandFdExt, FdMapping};

/// A running driver and the container's ends of its pipes.
pub struct Driver {
    pub child: Child,
    pub stdout: Option<std::io::PipeWriter>,
    pub stderr: Option<std::io::PipeWriter>,
    ready: std::io::PipeReader,
}

pub fn start(args: &[&str]) -> Driver {
    let (out_r, out_w) = std::io::pipe().expect("pipe");
    let (err_r, err_w) = std::io::pipe().expect("pipe");
    let (ready_r, ready_w) = std::io::pipe().expect("pipe");
    let mut command = Command::new(env!("CARGO_BIN_EXE_ctrd-log-driver"));
    command
        .args(args)
        .env_clear()
        .env("CONTAINER_ID", "c1")
        .env("CONTAINER_NAMESPACE", "test")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .fd_mappings(vec![
            FdMapping {
                parent_fd: OwnedFd::from(out_r),
                child_fd: 3,
            },
            FdMapping {
                parent_fd: OwnedFd::from(err_r),
                child_fd: 4,
            },
            FdMapping {
                parent_fd: OwnedFd::from(ready_w),
                child_fd: 5,
            },
        ])
        .expect("fd mappings");
    let child = command.spawn().expect("start ctrd-log-driver");
    drop(command);
    Driver {
        child,
        stdout: Some(out_w),
        stderr: Some(err_w),
        ready: ready_r,
    }
}

impl Driver {
    /// What arrives on fd 5 before it closes.
    pub fn readiness(&mut self) -> Vec<u8> {
        let mut got = Vec::new();
        self.ready.read_to_end(&mut got).expect("read fd 5");
        got
    }

    pub fn wait(mut self) -> (std::process::ExitStatus, String) {
        self.stdout.take();
        self.stderr.take();
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                break status;
            }
            assert!(Instant::now() < deadline, "the driver did not exit");
            std::thread::sleep(Duration::from_millis(10));
        };
        let mut err = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        (status, err)
    }
}
