//! The main job: start a private containerd, talk to it with the generated client, and run a
//! busybox container under it with `ctr`.
//!
//! Run it with `cargo xtask demo` (which installs the test bed first), as root.

use std::process::ExitCode;

use ctrd_client::Client;
use ctrd_testbed::{Containerd, Daemon, Rootfs};

/// The runtime containers run under.
const RUNTIME: &str = "io.containerd.runc.v2";

async fn run(daemon: Daemon, rootfs: &Rootfs) -> Result<(), Box<dyn std::error::Error>> {
    let containerd = Containerd::start(daemon)?;
    let client = Client::connect(containerd.grpc_address())
        .await?
        .with_namespace("demo");
    let version = client.version().version(()).await?.into_inner();
    println!(
        "containerd {} (revision {:?}) at {}",
        version.version,
        version.revision,
        containerd.grpc_address().display()
    );

    let output = containerd
        .ctr()?
        .args(["--namespace", "demo", "run", "--rm", "--rootfs"])
        .arg(format!("--runtime={RUNTIME}"))
        .arg(rootfs.path())
        .args([
            "demo-1",
            "/bin/sh",
            "-c",
            "echo hello from $(hostname) under $(uname -s)",
        ])
        .output()?;
    if !output.status.success() {
        return Err(format!(
            "ctr run failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    print!(
        "container says: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    let left = client
        .containers()
        .list(
            ctrd_client::api::containerd::services::containers::v1::ListContainersRequest {
                filters: vec![],
            },
        )
        .await?
        .into_inner()
        .containers;
    println!("containers left after --rm: {}", left.len());
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let rootfs = match Rootfs::busybox() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("demo: {e}");
            return ExitCode::FAILURE;
        }
    };
    for daemon in Daemon::selected() {
        println!("--- containerd {} ---", daemon.version());
        if let Err(e) = run(daemon, &rootfs).await {
            eprintln!("demo: containerd {}: {e}", daemon.version());
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
