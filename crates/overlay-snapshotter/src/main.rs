//! `ctrd-overlay-snapshotter --root DIR --address SOCKET`: serves the overlay snapshotter to
//! containerd (as `[proxy_plugins.NAME]`, `type = "snapshot"`) until SIGTERM.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use ctrd_overlay_snapshotter::{Error, Options, OverlaySnapshotter};
use ctrd_snapshots::Listener;

/// containerd's overlay snapshotter, in Rust, served over gRPC.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Folder holding the metadata database and the snapshots.
    #[arg(long)]
    root: PathBuf,
    /// Unix socket to serve on (made owner-only).
    #[arg(long)]
    address: PathBuf,
    /// Leave removed snapshots' folders for Cleanup (containerd's garbage collector calls
    /// it) instead of removing them during Remove.
    #[arg(long)]
    async_remove: bool,
    /// Serve id-mapped snapshots (the uidmapping/gidmapping labels) by chowning their
    /// files at Prepare even where the kernel makes idmapped mounts.
    #[arg(long)]
    chown_id_mapping: bool,
    /// Log filter (tracing's env-filter syntax), such as `info` or `debug`.
    #[arg(long, default_value = "info")]
    log_level: String,
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&args.log_level)
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let mut message = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(cause) = source {
                message.push_str(": ");
                message.push_str(&cause.to_string());
                source = cause.source();
            }
            eprintln!("ctrd-overlay-snapshotter: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<(), Error> {
    std::fs::create_dir_all(&args.root).map_err(|source| Error::Root {
        path: args.root.clone(),
        error: source,
    })?;
    let detected = Options::detect_at(&args.root);
    let options = Options {
        async_remove: args.async_remove,
        idmapped_mounts: detected.idmapped_mounts && !args.chown_id_mapping,
        ..detected
    };
    let snapshotter = OverlaySnapshotter::open(&args.root, options)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    runtime.block_on(async move {
        let listener = Listener::bind(&args.address)?;
        tracing::info!(root = %args.root.display(), address = %args.address.display(), ?options, "serving");
        ctrd_snapshots::serve(listener, snapshotter).await
    })?;
    Ok(())
}
