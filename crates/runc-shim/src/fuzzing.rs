//! Entry points for the fuzz targets under `fuzz/` in the repository: each hands untrusted
//! bytes to what the shim does with them before it acts (decoding, then [`crate::validate`]).
//! Not part of the API.

use ctrd_api::containerd::task::v2::*;
use ctrd_api::prost_types::Any;
use prost::Message;

/// The task service's methods, as ttrpc names them (`/containerd.task.v2.Task/Create`; v3 is
/// the same messages under `containerd.task.v3.Task`).
pub const METHODS: &[&str] = &[
    "State",
    "Create",
    "Start",
    "Delete",
    "Pids",
    "Pause",
    "Resume",
    "Checkpoint",
    "Kill",
    "Exec",
    "ResizePty",
    "CloseIO",
    "Update",
    "Wait",
    "Stats",
    "Connect",
    "Shutdown",
];

/// A request for `method` of the task service with `payload` as its message: decoded as the
/// service decodes it, then checked as the service checks it. Unknown methods are skipped (the
/// ttrpc server answers them "unimplemented" before any decoding).
pub fn task_request(method: &str, payload: &[u8]) {
    let method = method.rsplit('/').next().unwrap_or(method);
    match method {
        "Create" => {
            if let Ok(req) = CreateTaskRequest::decode(payload)
                && crate::validate::create(&req).is_ok()
            {
                let _ = crate::options::decode(req.options.as_ref());
            }
        }
        "Exec" => {
            if let Ok(req) = ExecProcessRequest::decode(payload)
                && crate::validate::exec(&req).is_ok()
                && let Some(spec) = &req.spec
            {
                let _ = serde_json::from_slice::<ctrd_runc::spec::Process>(&spec.value);
            }
        }
        "Update" => {
            if let Ok(req) = UpdateTaskRequest::decode(payload)
                && let Some(resources) = &req.resources
            {
                let _ = serde_json::from_slice::<ctrd_runc::spec::LinuxResources>(&resources.value);
            }
        }
        "State" => drop(StateRequest::decode(payload)),
        "Start" => drop(StartRequest::decode(payload)),
        "Delete" => drop(DeleteRequest::decode(payload)),
        "Pids" => drop(PidsRequest::decode(payload)),
        "Pause" => drop(PauseRequest::decode(payload)),
        "Resume" => drop(ResumeRequest::decode(payload)),
        "Checkpoint" => {
            if let Ok(req) = CheckpointTaskRequest::decode(payload) {
                let _ = crate::validate::path("checkpoint", &req.path);
            }
        }
        "Kill" => {
            if let Ok(req) = KillRequest::decode(payload) {
                let _ = crate::validate::signal(req.signal);
            }
        }
        "ResizePty" => drop(ResizePtyRequest::decode(payload)),
        "CloseIO" => drop(CloseIoRequest::decode(payload)),
        "Wait" => drop(WaitRequest::decode(payload)),
        "Stats" => drop(StatsRequest::decode(payload)),
        "Connect" => drop(ConnectRequest::decode(payload)),
        "Shutdown" => drop(ShutdownRequest::decode(payload)),
        _ => {}
    }
}

/// The runtime options containerd sends (in `start`'s standard input and in `Create`), as an
/// encoded `Any`.
pub fn options_any(payload: &[u8]) {
    if let Ok(any) = Any::decode(payload) {
        let _ = crate::validate::runc_options(Some(&any));
        let options = crate::options::decode(Some(&any));
        let _ = crate::options::runc_root(&options, "default");
    }
}

/// A stdio URI of `Create` or `Exec` (a log driver's `binary://` URI among them): checked, and
/// a driver's command line derived from it. Returns that command line when the URI passes.
pub fn stdio_uri(uri: &str) -> Option<(String, Vec<String>)> {
    crate::validate::stdio("", uri, "").ok()?;
    let driver = uri
        .strip_prefix("binary://")
        .or_else(|| uri.strip_prefix("binary-v2://"))?;
    Some(crate::stdio::driver_command(driver))
}

/// The program and arguments the shim runs for a `binary://` URI (given without its scheme).
pub fn driver_command(uri: &str) -> (String, Vec<String>) {
    crate::stdio::driver_command(uri)
}

/// A bundle's `config.json`, read as the shim reads it (the pid namespace) and as runc's spec
/// type reads it.
pub fn bundle_spec(config: &[u8]) {
    let _ = crate::create::spec_has_pid_namespace(config);
    let _ = serde_json::from_slice::<ctrd_runc::spec::Spec>(config);
}
