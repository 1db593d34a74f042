//! containerd's shim protocols for Rust shims: the task service (v2, which containerd 1.x
//! speaks, and v3, which containerd 2.x speaks to shims that announce it), the sandbox
//! service, event forwarding, the runc and CRI runtime options, and cgroup v1 and v2 metrics.
//!
//! The messages are the same prost types the gRPC client uses (`ctrd-client`), so an event or
//! a `Mount` needs no conversion between the two sides. Servers and clients run over the
//! `ttrpc` crate: asynchronous ones with the default feature `async`, synchronous ones with
//! `sync`. Pair them with `ctrd_macros::service` to write only the methods a shim supports.
//!
//! ```
//! use ctrd_shim_protos::TypeUrl;
//! use ctrd_shim_protos::containerd::events::TaskExit;
//! use ctrd_shim_protos::Event;
//!
//! let exit = TaskExit { container_id: "c1".into(), exit_status: 137, ..Default::default() };
//! let any = exit.to_any();
//! assert_eq!(any.type_url, "containerd.events.TaskExit");
//! assert_eq!(TaskExit::TOPIC, "/tasks/exit");
//! assert_eq!(TaskExit::from_any(&any).unwrap(), exit);
//! ```

pub use ctrd_api::{AnyError, Event, TypeUrl, prost, prost_types, ttrpc};

/// containerd's packages.
pub mod containerd {
    pub use ctrd_api::containerd::{events, runtime, task, types, v1};

    /// Event forwarding from shims to containerd (`containerd.services.events.ttrpc.v1`).
    pub mod services {
        pub use ctrd_api::containerd::services::events;
    }
}

/// runc's shim options (`containerd.runc.v1.Options`), what containerd passes in a task's
/// `options` and on a shim's standard input.
pub use ctrd_api::containerd::runc::v1 as runc_options;

/// CRI runtime options (`runtimeoptions.v1.Options`).
pub use ctrd_api::runtimeoptions::v1 as runtime_options;

/// cgroup metrics: `v1` for cgroup v1 hosts, `v2` for the unified hierarchy.
pub use ctrd_api::io::containerd::cgroups;

/// `google.rpc.Status`, as the sandbox API uses it.
pub use ctrd_api::google::rpc;
