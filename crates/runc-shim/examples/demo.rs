//! The main job: a real container under a private containerd, through our runc shim.
//!
//! `cargo xtask demo` builds the shim, installs the test bed and runs this with
//! `CTRD_RUNC_SHIM` naming the shim binary. For each containerd (1.6 and 2.1 by default), it
//! imports a busybox image built offline, runs a container from it with `ctr`, and shows which
//! shim served it.

use std::path::Path;
use std::process::ExitCode;

use ctrd_testbed::{Containerd, Daemon, ImageArchive};

fn run(daemon: Daemon, shim_dir: &Path, image: &ImageArchive) -> Result<(), String> {
    let containerd = Containerd::start_with_path(daemon, &[shim_dir]).map_err(|e| e.to_string())?;
    let ctr = |args: &[&str]| -> Result<String, String> {
        let out = containerd
            .ctr()
            .map_err(|e| e.to_string())?
            .args(["--namespace", "demo"])
            .args(args)
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(format!(
                "ctr {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    };
    println!("containerd at {}", containerd.grpc_address().display());
    ctr(&["images", "import", &image.path().display().to_string()])?;
    ctr(&["run", "-d", image.name(), "demo-1", "/bin/sleep", "30"])?;
    let said = ctr(&[
        "tasks",
        "exec",
        "--exec-id",
        "hello",
        "demo-1",
        "/bin/sh",
        "-c",
        "echo hello from the container, where I am pid $$",
    ])?;
    print!("container says: {said}");
    let address = containerd.grpc_address().display().to_string();
    let shim = std::fs::read_dir("/proc")
        .map_err(|e| e.to_string())?
        .filter_map(|e| e.ok())
        .find_map(|e| {
            let cmd = std::fs::read(e.path().join("cmdline")).ok()?;
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            (cmd.contains("containerd-shim") && cmd.contains(&address))
                .then(|| std::fs::read_link(e.path().join("exe")).ok())
                .flatten()
        });
    println!(
        "served by: {}",
        shim.map_or("?".to_owned(), |p| p.display().to_string())
    );
    ctr(&["tasks", "kill", "-s", "SIGKILL", "demo-1"])?;
    for _ in 0..100 {
        if ctr(&["tasks", "delete", "demo-1"]).is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    ctr(&["containers", "rm", "demo-1"])?;
    Ok(())
}

fn demo(shim: &Path) -> Result<(), String> {
    let dir = tempfile::Builder::new()
        .prefix("ctrd-demo-")
        .tempdir()
        .map_err(|e| e.to_string())?;
    let shim = std::fs::canonicalize(shim).map_err(|e| format!("{}: {e}", shim.display()))?;
    std::os::unix::fs::symlink(&shim, dir.path().join("containerd-shim-runc-v2"))
        .map_err(|e| e.to_string())?;
    let image =
        ImageArchive::busybox("docker.io/library/ctrd-demo:latest").map_err(|e| e.to_string())?;
    for daemon in Daemon::selected() {
        println!("--- containerd {} ---", daemon.version());
        run(daemon, dir.path(), &image)?;
    }
    Ok(())
}

fn main() -> ExitCode {
    let Some(shim) = std::env::var_os("CTRD_RUNC_SHIM") else {
        eprintln!(
            "demo: set CTRD_RUNC_SHIM to the containerd-shim-runc-v2 binary (cargo xtask demo does)"
        );
        return ExitCode::FAILURE;
    };
    match demo(Path::new(&shim)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("demo: {e}");
            ExitCode::FAILURE
        }
    }
}
