//! Entry points for the fuzz targets under `fuzz/` in the repository: each feeds untrusted
//! bytes to the parser a shim uses on them, exactly as the shim does. Not part of the API.

use std::path::Path;

use crate::{Flags, Reply, StartInput};

/// A shim's `start` reading `input` from standard input (containerd 1.6 to 2.2 send runtime
/// options as an `Any`, 2.3+ a `BootstrapParams`), then choosing and encoding its answer.
pub fn start_input(input: &[u8]) {
    let flags = Flags {
        namespace: "default".into(),
        id: "c1".into(),
        address: "/run/containerd/containerd.sock".into(),
        publish_binary: String::new(),
        bundle: None,
        socket: None,
        debug: false,
        action: crate::Action::Start,
    };
    let parsed = StartInput::parse(input, &flags);
    let _ = parsed.options();
    if let StartInput::Bootstrap(params) = &parsed
        && let Some(dir) = params.socket_dir.as_deref()
    {
        let _ = crate::socket_address_in(dir, &params.containerd_grpc_address, "default", "c1");
    }
    let reply = Reply::choose(&parsed, Some("2"), None, Path::new("/nonexistent/a/b/c"));
    let _ = reply.encode("unix:///run/containerd/s/0123");
}

/// The shim's command line, as containerd gives it (`args` without the program name).
pub fn flags(args: Vec<String>) {
    if let Ok(flags) = Flags::parse(args) {
        let _ = flags.serve_args();
    }
}

/// The annotations `start` reads from a bundle's `config.json` to find the container's group.
pub fn spec_annotations(config: &[u8]) {
    let _ = crate::start::spec_annotations(config);
}
