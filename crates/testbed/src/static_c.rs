//! Small C programs compiled statically with the machine's C compiler (the one Rust links
//! with), for images that hold no C library: the pause program and critest's probes.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use crate::Error;

/// A pod's sandbox process, as Kubernetes' `pause` behaves: PID 1 that sleeps in `pause(2)`,
/// reaps every child (the pod's orphans, in a shared PID namespace) and leaves with status 0
/// on SIGTERM or SIGINT. Compiled, not a shell loop, so that no `sleep` process shows up in
/// a pod whose containers share its PID namespace (critest looks for one with `pgrep`).
const PAUSE: &str = r#"#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static void leave(int signal) { (void)signal; _exit(0); }

static void reap(int signal) {
    (void)signal;
    while (waitpid(-1, 0, WNOHANG) > 0) {
    }
}

int main(void) {
    struct sigaction action = {0};
    action.sa_handler = leave;
    sigaction(SIGTERM, &action, 0);
    sigaction(SIGINT, &action, 0);
    action.sa_handler = reap;
    action.sa_flags = SA_NOCLDSTOP | SA_RESTART;
    sigaction(SIGCHLD, &action, 0);
    for (;;) {
        pause();
    }
}
"#;

/// The pause program (see [`PAUSE`]), compiled once per test process.
pub(crate) fn pause_program() -> Result<Vec<u8>, Error> {
    static PROGRAM: OnceLock<Vec<u8>> = OnceLock::new();
    if let Some(program) = PROGRAM.get() {
        return Ok(program.clone());
    }
    let program = compile("pause", PAUSE)?;
    Ok(PROGRAM.get_or_init(|| program).clone())
}

/// Compiles `source` (C) into a static program named `name`, in a scratch folder removed
/// afterwards, and returns its bytes.
pub(crate) fn compile(name: &str, source: &str) -> Result<Vec<u8>, Error> {
    let scratch = tempfile::Builder::new()
        .prefix("ctrd-static-c-")
        .tempdir_in("/tmp")
        .map_err(|e| Error::io("/tmp", e))?;
    compile_in(scratch.path(), name, source)
}

fn compile_in(scratch: &Path, name: &str, source: &str) -> Result<Vec<u8>, Error> {
    let file = scratch.join(format!("{name}.c"));
    let program = scratch.join(name);
    std::fs::write(&file, source).map_err(|e| Error::io(&file, e))?;
    let out = Command::new("cc")
        .args(["-static", "-O2", "-o"])
        .arg(&program)
        .arg(&file)
        .stdin(Stdio::null())
        .output()
        .map_err(|_| Error::Missing {
            what: "a C compiler (cc, with libc6-dev for static linking)".into(),
            path: "cc".into(),
        })?;
    if !out.status.success() {
        return Err(Error::Build {
            what: format!("the test images' `{name}` program (cc -static)"),
            reason: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    std::fs::read(&program).map_err(|e| Error::io(&program, e))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::process::Command;
    use std::time::Duration;

    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;

    use super::pause_program;

    #[test]
    fn pause_leaves_with_status_0_on_sigterm() {
        let program = pause_program().expect("cc -static builds the pause program");
        let dir = tempfile::tempdir().expect("scratch folder");
        let path = dir.path().join("pause");
        std::fs::write(&path, &program).expect("write the program");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let mut child = Command::new(&path).spawn().expect("run the pause program");
        // Still paused a moment later, then gone with status 0 on SIGTERM.
        std::thread::sleep(Duration::from_millis(100));
        assert!(
            child.try_wait().expect("wait").is_none(),
            "pause exited early"
        );
        let pid = Pid::from_raw(i32::try_from(child.id()).expect("pid fits"));
        kill(pid, Signal::SIGTERM).expect("SIGTERM");
        let status = child.wait().expect("wait");
        assert_eq!(status.code(), Some(0), "{status}");
    }
}
