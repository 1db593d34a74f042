//! What the generator knows about containerd beyond the `.proto` files themselves.

/// Packages whose services travel over ttrpc (the shim side of containerd); every other service
/// is a gRPC service and gets tonic clients and servers.
pub const TTRPC_PACKAGES: &[&str] = &[
    "containerd.task.v2",
    "containerd.task.v3",
    "containerd.runtime.sandbox.v1",
    "containerd.services.events.ttrpc.v1",
];

/// The topic containerd publishes each event message under (fully qualified proto name, topic).
///
/// containerd keeps these next to its publishers, not in the protos, so we list them here.
pub const EVENT_TOPICS: &[(&str, &str)] = &[
    ("containerd.events.ContainerCreate", "/containers/create"),
    ("containerd.events.ContainerUpdate", "/containers/update"),
    ("containerd.events.ContainerDelete", "/containers/delete"),
    ("containerd.events.ContentCreate", "/content/create"),
    ("containerd.events.ContentDelete", "/content/delete"),
    ("containerd.events.ImageCreate", "/images/create"),
    ("containerd.events.ImageUpdate", "/images/update"),
    ("containerd.events.ImageDelete", "/images/delete"),
    ("containerd.events.NamespaceCreate", "/namespaces/create"),
    ("containerd.events.NamespaceUpdate", "/namespaces/update"),
    ("containerd.events.NamespaceDelete", "/namespaces/delete"),
    ("containerd.events.SandboxCreate", "/sandboxes/create"),
    ("containerd.events.SandboxStart", "/sandboxes/start"),
    ("containerd.events.SandboxExit", "/sandboxes/exit"),
    ("containerd.events.SnapshotPrepare", "/snapshot/prepare"),
    ("containerd.events.SnapshotCommit", "/snapshot/commit"),
    ("containerd.events.SnapshotRemove", "/snapshot/remove"),
    ("containerd.events.TaskCreate", "/tasks/create"),
    ("containerd.events.TaskStart", "/tasks/start"),
    ("containerd.events.TaskDelete", "/tasks/delete"),
    ("containerd.events.TaskExit", "/tasks/exit"),
    ("containerd.events.TaskOOM", "/tasks/oom"),
    ("containerd.events.TaskExecAdded", "/tasks/exec-added"),
    ("containerd.events.TaskExecStarted", "/tasks/exec-started"),
    ("containerd.events.TaskPaused", "/tasks/paused"),
    ("containerd.events.TaskResumed", "/tasks/resumed"),
    ("containerd.events.TaskCheckpointed", "/tasks/checkpointed"),
];

/// Whether services of `package` are ttrpc services.
pub fn is_ttrpc(package: &str) -> bool {
    TTRPC_PACKAGES.contains(&package)
}

/// The event topic of a message, if it is an event.
pub fn topic(full_name: &str) -> Option<&'static str> {
    EVENT_TOPICS
        .iter()
        .find(|(name, _)| *name == full_name)
        .map(|(_, topic)| *topic)
}
