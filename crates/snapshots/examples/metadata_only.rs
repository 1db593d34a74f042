//! `metadata_only --root DIR --address SOCKET [--log-level LEVEL]`: serves [`MetadataOnly`] (a snapshotter that
//! keeps only metadata) to containerd as a proxy snapshotter until SIGTERM, with its store at
//! `DIR/metadata.redb`. At `--log-level debug` it logs each call it serves.
//!
//! Its snapshots have no files, so nothing can run on them; `cargo xtask bench` serves it
//! from a memory filesystem to measure what containerd's proxy path costs by itself.
//!
//! ```text
//! cargo run --release -p ctrd-snapshots --features conformance --example metadata_only -- \
//!     --root /dev/shm/metadata-only --address /run/metadata-only.sock
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use ctrd_snapshots::Listener;
use ctrd_snapshots::conformance::MetadataOnly;

fn main() -> ExitCode {
    let Args {
        root,
        address,
        log_level,
    } = match args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!(
                "metadata_only: {e}\nusage: metadata_only --root DIR --address SOCKET \
                 [--log-level LEVEL]"
            );
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&log_level)
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match serve(root, address) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("metadata_only: {e}");
            ExitCode::FAILURE
        }
    }
}

struct Args {
    root: PathBuf,
    address: PathBuf,
    log_level: String,
}

/// `--root` and `--address` (both required), and `--log-level` (`info` unless given).
fn args() -> Result<Args, String> {
    let (mut root, mut address, mut log_level) = (None, None, None);
    let mut args = std::env::args_os().skip(1);
    while let Some(flag) = args.next() {
        let slot = match flag.to_str() {
            Some("--root") => &mut root,
            Some("--address") => &mut address,
            Some("--log-level") => &mut log_level,
            _ => return Err(format!("unknown argument {flag:?}")),
        };
        let value = args.next().ok_or(format!("{flag:?} needs a value"))?;
        *slot = Some(value);
    }
    Ok(Args {
        root: root.ok_or("--root is missing")?.into(),
        address: address.ok_or("--address is missing")?.into(),
        log_level: log_level
            .map_or_else(|| "info".to_owned(), |l| l.to_string_lossy().into_owned()),
    })
}

fn serve(root: PathBuf, address: PathBuf) -> Result<(), String> {
    std::fs::create_dir_all(&root).map_err(|e| format!("creating {}: {e}", root.display()))?;
    let snapshotter =
        MetadataOnly::open(&root.join("metadata.redb")).map_err(|e| e.full_message())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("starting the tokio runtime: {e}"))?;
    runtime
        .block_on(async move {
            let listener = Listener::bind(&address)?;
            ctrd_snapshots::serve(listener, snapshotter).await
        })
        .map_err(|e| e.full_message())
}
