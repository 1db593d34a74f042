//! The `start` action: launch a serving shim, or reuse the one serving the container's group,
//! and tell containerd where it listens.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use command_fds::{CommandFdExt, FdMapping};
use nix::sys::stat::{Mode, umask};

use crate::address::{SOCKET_DIR, socket_address_in, socket_path};
use crate::bootstrap::{MAX_SHIM_VERSION_ENV, Reply, StartInput, TASK_API_ENV};
use crate::{Error, Flags, Shim, StartContext};

/// Environment variable naming the socket path a serving shim removes on exit.
pub(crate) const SOCKET_ENV: &str = "CTRD_SHIM_SOCKET";
/// The fd a serving shim finds its listening socket on.
pub(crate) const LISTENER_FD: i32 = 3;

pub(crate) fn run<S: Shim>(flags: &Flags) -> Result<(), Error> {
    let bundle = match &flags.bundle {
        Some(b) => b.clone(),
        None => std::env::current_dir().map_err(|e| Error::io("reading the working folder", e))?,
    };
    let mut input = Vec::new();
    // containerd may send nothing and close stdin, or not open it at all.
    let _ = std::io::stdin().read_to_end(&mut input);
    let parsed = StartInput::parse(&input, flags);

    let (mut grpc_address, mut ttrpc_address) = (
        flags.address.clone(),
        std::env::var("TTRPC_ADDRESS").unwrap_or_default(),
    );
    let mut socket_dir = SOCKET_DIR;
    if let StartInput::Bootstrap(params) = &parsed {
        if grpc_address.is_empty() {
            grpc_address = params.containerd_grpc_address.clone();
        }
        if ttrpc_address.is_empty() {
            ttrpc_address = params.containerd_ttrpc_address.clone();
        }
        if let Some(dir) = params.socket_dir.as_deref().filter(|d| !d.is_empty()) {
            socket_dir = dir;
        }
    }

    let annotations = annotations(&bundle)?;
    let group = S::group(&flags.id, &annotations);
    S::on_start(&StartContext {
        namespace: flags.namespace.clone(),
        id: flags.id.clone(),
        group: group.clone(),
        bundle: bundle.clone(),
        options: parsed.options().cloned(),
        annotations,
    })?;

    let address = socket_address_in(socket_dir, &grpc_address, &flags.namespace, &group);
    let path = PathBuf::from(socket_path(&address));
    if let Some(listener) = bind_unless_served(&path)? {
        let mut serve_flags = flags.clone();
        serve_flags.id = group;
        serve_flags.address = grpc_address;
        launch(&serve_flags, &bundle, listener, &path, &ttrpc_address)?;
    }
    std::fs::write(bundle.join("address"), &address)
        .map_err(|e| Error::io("writing the bundle's address file", e))?;

    let reply = Reply::choose(
        &parsed,
        std::env::var(MAX_SHIM_VERSION_ENV).ok().as_deref(),
        std::env::var(TASK_API_ENV).ok().as_deref(),
        &bundle,
    );
    std::io::stdout()
        .write_all(&reply.encode(&address))
        .map_err(|e| Error::io("writing the address", e))
}

/// The spec's annotations (none if the bundle has no readable spec).
fn annotations(bundle: &Path) -> Result<HashMap<String, String>, Error> {
    let Ok(text) = std::fs::read(bundle.join("config.json")) else {
        return Ok(HashMap::new());
    };
    spec_annotations(&text).map_err(|message| Error::Bundle {
        bundle: bundle.to_owned(),
        message,
    })
}

/// The string annotations of the runtime spec in `config` (the bytes of `config.json`).
pub(crate) fn spec_annotations(config: &[u8]) -> Result<HashMap<String, String>, String> {
    let spec: serde_json::Value =
        serde_json::from_slice(config).map_err(|e| format!("config.json is not JSON: {e}"))?;
    Ok(spec
        .get("annotations")
        .and_then(|a| a.as_object())
        .map(|a| {
            a.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default())
}

/// Binds the owner-only socket at `path`, or returns `None` when a shim already serves there.
fn bind_unless_served(path: &Path) -> Result<Option<UnixListener>, Error> {
    if UnixStream::connect(path).is_ok() {
        return Ok(None);
    }
    let dir = path.parent().unwrap_or(Path::new(SOCKET_DIR));
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    // A socket file nobody listens on is left from a dead shim.
    let _ = std::fs::remove_file(path);
    // Created as 0600 from the start: no window in which another user could connect.
    let previous = umask(Mode::from_bits_truncate(0o177));
    let bound = UnixListener::bind(path);
    umask(previous);
    match bound {
        Ok(listener) => Ok(Some(listener)),
        // Another `start` for the same group won the race.
        Err(e)
            if e.kind() == std::io::ErrorKind::AddrInUse && UnixStream::connect(path).is_ok() =>
        {
            Ok(None)
        }
        Err(e) => Err(Error::io(format!("binding {}", path.display()), e)),
    }
}

/// Starts the serving shim: this binary without an action, in its own session, in the
/// bundle, with the listener as fd 3.
fn launch(
    flags: &Flags,
    bundle: &Path,
    listener: UnixListener,
    path: &Path,
    ttrpc_address: &str,
) -> Result<(), Error> {
    let exe = std::env::current_exe().map_err(|e| Error::io("finding this binary", e))?;
    let mut command = Command::new(exe);
    command
        .args(flags.serve_args())
        .current_dir(bundle)
        .env(SOCKET_ENV, path)
        .env("TTRPC_ADDRESS", ttrpc_address)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command
        .fd_mappings(vec![FdMapping {
            parent_fd: OwnedFd::from(listener),
            child_fd: LISTENER_FD,
        }])
        .map_err(|e| Error::io("passing the listener", std::io::Error::other(e)))?;
    // SAFETY: runs in the child between fork and exec; setsid is async-signal-safe and touches
    // no memory of the parent.
    unsafe {
        command.pre_exec(|| {
            nix::unistd::setsid()
                .map(drop)
                .map_err(std::io::Error::from)
        });
    }
    command
        .spawn()
        .map(drop)
        .map_err(|e| Error::io("launching the serving shim", e))
}
