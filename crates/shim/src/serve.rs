//! The serving shim: ttrpc on an owner-only socket until told to stop.

use std::collections::HashMap;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ctrd_api::containerd::task::v2::task_ttrpc_async;
use ctrd_api::ttrpc::r#async::transport::Listener;
use ctrd_api::ttrpc::r#async::{Server, Service};
use futures_util::stream;
use nix::unistd::getuid;
use tokio::net::UnixListener;
use tokio::signal::unix::{SignalKind, signal};

use crate::publisher::{Publisher, Target};
use crate::reaper::Reaper;
use crate::start::{LISTENER_FD, SOCKET_ENV};
use crate::{Error, Flags, ServeContext, Shim, Shutdown, logging};

const TASK_V2: &str = "containerd.task.v2.Task";
const TASK_V3: &str = "containerd.task.v3.Task";

pub(crate) fn run<S: Shim>(flags: &Flags) -> Result<(), Error> {
    let bundle = std::env::current_dir().map_err(|e| Error::io("reading the working folder", e))?;
    logging::init(&bundle, flags.debug);
    let socket = std::env::var_os(SOCKET_ENV).map(PathBuf::from);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("starting the runtime", e))?;
    let result = runtime.block_on(serve::<S>(flags, bundle, socket.clone()));
    if let Some(path) = socket {
        let _ = std::fs::remove_file(path);
    }
    result
}

async fn serve<S: Shim>(
    flags: &Flags,
    bundle: PathBuf,
    socket: Option<PathBuf>,
) -> Result<(), Error> {
    let listener = listener(flags, socket.as_deref())?;
    let reaper = Reaper::start()?;
    let ttrpc_address = std::env::var("TTRPC_ADDRESS").unwrap_or_default();
    let publisher = Publisher::start(
        Target {
            ttrpc_address: ttrpc_address.clone(),
            grpc_address: flags.address.clone(),
            publish_binary: flags.publish_binary.clone(),
            namespace: flags.namespace.clone(),
        },
        Some(reaper.clone()),
    );
    let shutdown = Shutdown::default();
    let ctx = ServeContext {
        namespace: flags.namespace.clone(),
        id: flags.id.clone(),
        bundle,
        grpc_address: flags.address.clone(),
        ttrpc_address,
        debug: flags.debug,
        publisher: publisher.clone(),
        reaper,
        shutdown: shutdown.clone(),
    };
    let task = Arc::new(S::task(ctx.clone()).await?);
    let mut services = task_services(task);
    services.extend(S::extra_services(&ctx));
    drop(ctx);

    let mut server = Server::new()
        .add_listener(owner_only(listener))
        .register_service(services);
    server.start().await?;
    tracing::info!(namespace = %flags.namespace, id = %flags.id, "shim serving");

    let mut term = signal(SignalKind::terminate()).map_err(|e| Error::io("SIGTERM", e))?;
    let mut int = signal(SignalKind::interrupt()).map_err(|e| Error::io("SIGINT", e))?;
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = int.recv() => tracing::info!("SIGINT: shutting down"),
        _ = shutdown.wait() => tracing::info!("shutdown requested"),
    }
    // Answer what is in flight, then close; bounded so a stuck peer cannot hold the shim.
    let _ = tokio::time::timeout(Duration::from_secs(2), server.shutdown()).await;
    publisher.flush(Duration::from_secs(2)).await;
    Ok(())
}

/// The task service under both task API names: their messages are identical on the wire, so
/// one implementation answers containerd 1.x (v2) and 2.x (v3).
fn task_services<T: task_ttrpc_async::Task>(task: Arc<T>) -> HashMap<String, Service> {
    let mut services = task_ttrpc_async::create_task(task.clone());
    if let Some(v3) = task_ttrpc_async::create_task(task).remove(TASK_V2) {
        services.insert(TASK_V3.to_owned(), v3);
    }
    services
}

/// The listening socket: fd 3 from `start`, or a socket bound at `-socket`.
fn listener(
    flags: &Flags,
    socket: Option<&std::path::Path>,
) -> Result<std::os::unix::net::UnixListener, Error> {
    if socket.is_some() {
        // Refuse to adopt fd 3 unless it really is a socket: the variable may have leaked into
        // an environment that never passed one.
        let is_socket = std::fs::metadata(format!("/proc/self/fd/{LISTENER_FD}"))
            .map(|m| std::os::unix::fs::FileTypeExt::is_socket(&m.file_type()))
            .unwrap_or(false);
        if !is_socket {
            return Err(Error::Usage(
                "fd 3 is not the listening socket `start` passes; run the shim through `start`"
                    .into(),
            ));
        }
        // SAFETY: fd 3 is an open socket that `start` passed for this process to own (it sets
        // the socket variable only then); nothing else in this process owns fd 3.
        let fd = unsafe { OwnedFd::from_raw_fd(LISTENER_FD) };
        return Ok(std::os::unix::net::UnixListener::from(fd));
    }
    let Some(path) = &flags.socket else {
        return Err(Error::Usage(
            "the serving shim is started by `start` (or needs -socket PATH)".into(),
        ));
    };
    let path = crate::address::socket_path(path);
    let _ = std::fs::remove_file(path);
    let previous = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o177));
    let bound = std::os::unix::net::UnixListener::bind(path);
    nix::sys::stat::umask(previous);
    bound.map_err(|e| Error::io(format!("binding {path}"), e))
}

/// Accepts only connections from this shim's own uid (checked with `SO_PEERCRED`).
fn owner_only(listener: std::os::unix::net::UnixListener) -> Listener {
    let owner = getuid().as_raw();
    let listener = listener
        .set_nonblocking(true)
        .and_then(|()| UnixListener::from_std(listener));
    Listener::new(stream::unfold(listener, move |listener| async move {
        let l = match &listener {
            Ok(l) => l,
            Err(e) => {
                let e = std::io::Error::new(e.kind(), e.to_string());
                return Some((Err(e), listener));
            }
        };
        loop {
            match l.accept().await {
                Ok((stream, _)) => match stream.peer_cred() {
                    Ok(cred) if cred.uid() == owner => return Some((Ok(stream), listener)),
                    Ok(cred) => {
                        tracing::warn!(uid = cred.uid(), "refused a connection from another user");
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "refused a connection without credentials")
                    }
                },
                Err(e) => return Some((Err(e), listener)),
            }
        }
    }))
}
