//! The containerd runtime v2 shim life cycle, so a shim author writes only the task logic, as
//! containerd's Go `pkg/shim` does for Go shims.
//!
//! Implement [`Shim`] and call [`run`] from `main`. The framework handles:
//!
//! - the command line containerd uses (`-namespace -id -address -publish-binary -bundle
//!   -socket -debug`, actions `start` and `delete`, `-v`, `-info`);
//! - `start`: the socket address containerd's shims use, a detached serving shim in its own
//!   session (or the running one of the same group: containers carrying the same
//!   `io.kubernetes.cri.sandbox-id` share a shim), the runtime options from stdin, and the
//!   answer each containerd generation expects (plain address for 1.6, JSON announcing task
//!   API v2 or v3 for 1.7 to 2.2, protobuf `BootstrapResult` for 2.3+);
//! - `delete`: the cleanup containerd asks of a dead shim;
//! - serving: ttrpc on an owner-only socket (other uids are refused), the task service under
//!   both `containerd.task.v2.Task` and `containerd.task.v3.Task` (their messages are the same
//!   on the wire), extra services, shutdown on SIGTERM/SIGINT or [`Shutdown`], socket removed
//!   on exit;
//! - reaping as a subreaper with exit subscriptions that cannot lose an exit ([`Reaper`]);
//! - events to containerd through a bounded queue with retries, reconnection and the publish
//!   binary as fallback ([`Publisher`]);
//! - logging to the bundle's `log` FIFO in the format containerd's shims use.
//!
//! The serving shim runs on a single-threaded tokio runtime. A shim written against the
//! synchronous task trait (`task_ttrpc::Task`, with the `ttrpc` feature of `ctrd-api`) plugs in
//! through the generated adapter: `type Task = task_ttrpc_async::FromSync<MySyncTasks>`; its
//! calls then run on the runtime's blocking pool. One framework serves both.
//!
//! ```no_run
//! use ctrd_shim::{Error, ServeContext, Shim};
//! use ctrd_shim::protos::containerd::task::v2::{task_ttrpc_async, ConnectRequest, ConnectResponse};
//! use ctrd_shim::protos::ttrpc;
//!
//! struct Mine;
//! struct Tasks(ServeContext);
//!
//! #[ctrd_macros::service(ctrd_api::containerd::task::v2::task_ttrpc_async::Task)]
//! impl task_ttrpc_async::Task for Tasks {
//!     async fn connect(&self, _: &ttrpc::r#async::TtrpcContext, _: ConnectRequest)
//!         -> ttrpc::Result<ConnectResponse> {
//!         Ok(ConnectResponse { shim_pid: std::process::id(), ..Default::default() })
//!     }
//! }
//!
//! impl Shim for Mine {
//!     type Task = Tasks;
//!     const NAME: &'static str = "containerd-shim-mine-v2";
//!     async fn task(ctx: ServeContext) -> Result<Tasks, Error> {
//!         Ok(Tasks(ctx))
//!     }
//! }
//!
//! fn main() -> std::process::ExitCode {
//!     ctrd_shim::run::<Mine>()
//! }
//! ```

mod address;
mod bootstrap;
mod context;
mod delete;
mod error;
mod flags;
#[doc(hidden)]
pub mod fuzzing;
pub mod identifier;
mod logging;
mod pid;
mod publisher;
mod reaper;
mod serve;
mod start;

use std::collections::HashMap;
use std::future::Future;
use std::io::Write;
use std::process::ExitCode;
use std::time::SystemTime;

use ctrd_api::containerd::task::v2::{DeleteResponse, task_ttrpc_async};
use ctrd_api::containerd::types::{RuntimeInfo, RuntimeVersion};
use ctrd_api::prost_types::Timestamp;
use prost::Message;

pub use address::{SOCKET_DIR, socket_address, socket_address_in};
pub use bootstrap::{Reply, StartInput};
pub use context::{DeleteContext, ServeContext, Shutdown, StartContext};
pub use error::Error;
pub use flags::{Action, Flags};
pub use pid::{InvalidPid, Pid};
pub use publisher::{PublishError, Publisher, QUEUE, Target};
pub use reaper::{Exit, ExitSubscription, Reaper};

/// The protocol bindings (`ctrd-api`), re-exported. A shim depends on `ctrd-api` with only its
/// `ttrpc-async` (or `ttrpc`) feature: no tonic, no protoc, no build script.
pub use ctrd_api as protos;

/// Annotation CRI sets on every container of a pod, naming the pod's sandbox.
pub const SANDBOX_ID_ANNOTATION: &str = "io.kubernetes.cri.sandbox-id";
/// Annotation that groups containers into one shim outside Kubernetes.
pub const GROUP_ANNOTATION: &str = "io.containerd.runc.v2.group";

/// A shim: its task service and the hooks of its life cycle.
pub trait Shim: Sized + Send + Sync + 'static {
    /// The task service containerd talks to.
    type Task: task_ttrpc_async::Task;

    /// The binary's name, for `-v` and `-info` (`containerd-shim-<runtime>-v2`).
    const NAME: &'static str;

    /// The version reported by `-v` and `-info`.
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    /// Builds the task service in the serving shim.
    fn task(ctx: ServeContext) -> impl Future<Output = Result<Self::Task, Error>> + Send;

    /// More ttrpc services to serve next to the task service (a sandbox service, ...).
    fn extra_services(_ctx: &ServeContext) -> HashMap<String, ctrd_api::ttrpc::r#async::Service> {
        HashMap::new()
    }

    /// Runs in `start` before a serving shim is launched or reused, with the runtime options
    /// containerd passed (for example, to place the shim in a cgroup).
    fn on_start(_ctx: &StartContext) -> Result<(), Error> {
        Ok(())
    }

    /// The group a container is served in: containers of one group share a shim. By default
    /// the pod's sandbox id, else the `io.containerd.runc.v2.group` annotation, else the id.
    fn group(id: &str, annotations: &HashMap<String, String>) -> String {
        annotations
            .get(SANDBOX_ID_ANNOTATION)
            .or_else(|| annotations.get(GROUP_ANNOTATION))
            .filter(|g| !g.is_empty())
            .cloned()
            .unwrap_or_else(|| id.to_owned())
    }

    /// containerd's `delete` action, for a container whose shim died: release what it held
    /// and report how it ended. By default: nothing to release, killed (137) now.
    fn delete(_ctx: DeleteContext) -> impl Future<Output = Result<DeleteResponse, Error>> + Send {
        async {
            Ok(DeleteResponse {
                pid: 0,
                exit_status: 128 + 9,
                exited_at: Some(now()),
            })
        }
    }

    /// What `-info` prints (containerd 2.x asks for it).
    fn info() -> RuntimeInfo {
        RuntimeInfo {
            name: Self::NAME.to_owned(),
            version: Some(RuntimeVersion {
                version: Self::VERSION.to_owned(),
                revision: String::new(),
            }),
            ..Default::default()
        }
    }
}

/// The current time as a protobuf timestamp.
pub fn now() -> Timestamp {
    let d = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos() as i32,
    }
}

/// Runs the shim binary: parses the command line containerd gave and performs the action.
pub fn run<S: Shim>() -> ExitCode {
    let flags = match Flags::parse(std::env::args().skip(1)) {
        Ok(flags) => flags,
        Err(e) => {
            eprintln!("{}: {e}", S::NAME);
            return ExitCode::from(2);
        }
    };
    let result = match flags.action {
        Action::Version => {
            println!("{}:\n  Version:  {}\n  Revision: \n", S::NAME, S::VERSION);
            Ok(())
        }
        Action::Info => std::io::stdout()
            .write_all(&S::info().encode_to_vec())
            .map_err(|e| Error::io("writing runtime info", e)),
        Action::Start => start::run::<S>(&flags),
        Action::Delete => delete::run::<S>(&flags),
        Action::Serve => serve::run::<S>(&flags),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "shim failed");
            eprintln!("{}: {e}", S::NAME);
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ctrd_api::containerd::task::v2::task_ttrpc;
    use std::sync::Arc;

    /// A shim whose task service is synchronous.
    struct SyncShim;
    struct SyncTasks;

    #[ctrd_macros::service(ctrd_api::containerd::task::v2::task_ttrpc::Task)]
    impl task_ttrpc::Task for SyncTasks {}

    impl Shim for SyncShim {
        type Task = task_ttrpc_async::FromSync<SyncTasks>;
        const NAME: &'static str = "containerd-shim-sync-v2";

        async fn task(_ctx: ServeContext) -> Result<Self::Task, Error> {
            Ok(task_ttrpc_async::FromSync(Arc::new(SyncTasks)))
        }
    }

    fn runnable<S: Shim>() -> fn() -> ExitCode {
        run::<S>
    }

    #[test]
    fn a_synchronous_task_service_makes_a_shim() {
        let _ = runnable::<SyncShim>();
        assert_eq!(SyncShim::info().name, "containerd-shim-sync-v2");
    }
}
