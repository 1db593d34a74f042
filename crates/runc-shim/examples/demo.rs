//! The main job: a real container under a private containerd, through our runc shim, driven
//! by our client.
//!
//! `cargo xtask demo` builds the shim, installs the test bed and runs this with
//! `CTRD_RUNC_SHIM` naming the shim binary. For each containerd (1.6 and 2.1 by default), it
//! imports a busybox image built offline with `ctrd-client`, runs a container from it, execs
//! into it, shows which shim served it, and removes everything again.

use std::path::Path;
use std::process::ExitCode;

use ctrd_client::{Client, ImportOptions, NewContainer, Stdio};
use ctrd_testbed::{Containerd, Daemon, ImageArchive};
use tokio::io::AsyncReadExt;

async fn run(daemon: Daemon, shim_dir: &Path, image: &ImageArchive) -> Result<(), String> {
    let containerd = Containerd::start_with_path(daemon, &[shim_dir]).map_err(|e| e.to_string())?;
    println!("containerd at {}", containerd.grpc_address().display());
    let client = Client::connect(containerd.grpc_address())
        .await
        .map_err(|e| e.to_string())?
        .try_with_namespace("demo")
        .map_err(|e| e.to_string())?;
    let version = client.server_version().await.map_err(|e| e.to_string())?;
    println!("containerd says it is {}", version.version);

    let err = |e: ctrd_client::Error| e.to_string();
    let images = client
        .import(image.path(), ImportOptions::default().unpack("overlayfs"))
        .await
        .map_err(err)?;
    println!("imported {} ({})", images[0].name, images[0].digest);

    client
        .create_container(NewContainer::new("demo-1", image.name()).args(["sleep", "30"]))
        .await
        .map_err(err)?;
    let (task, _io) = client.new_task("demo-1", Stdio::Null).await.map_err(err)?;
    task.start().await.map_err(err)?;

    let command = [
        "/bin/sh",
        "-c",
        "echo hello from the container, where I am pid $$",
    ]
    .map(str::to_owned);
    let (exec, mut io) = task
        .exec("hello", &command, Stdio::fifos(false))
        .await
        .map_err(err)?;
    let mut stdout = io.stdout.take().ok_or("no stdout pipe")?;
    exec.start().await.map_err(err)?;
    let mut said = String::new();
    stdout
        .read_to_string(&mut said)
        .await
        .map_err(|e| e.to_string())?;
    exec.wait().await.map_err(err)?;
    exec.delete().await.map_err(err)?;
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

    task.kill(9, false).await.map_err(err)?;
    let exit = task.wait().await.map_err(err)?;
    println!("container ended with status {}", exit.code);
    task.delete().await.map_err(err)?;
    client.delete_container("demo-1").await.map_err(err)?;
    client.remove_image(image.name()).await.map_err(err)?;
    Ok(())
}

async fn demo(shim: &Path) -> Result<(), String> {
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
        run(daemon, dir.path(), &image).await?;
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
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("demo: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(demo(Path::new(&shim))) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("demo: {e}");
            ExitCode::FAILURE
        }
    }
}
