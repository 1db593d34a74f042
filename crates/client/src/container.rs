//! Containers: records made from an image, a snapshot and a runtime spec.

use std::collections::HashMap;
use std::time::Duration;

use ctrd_api::containerd::services::containers::v1 as containers;
use ctrd_api::containerd::services::snapshots::v1 as snapshots;
use ctrd_api::prost_types::Any;

use crate::{Client, Error, image::oci, spec};

/// The runtime containers get unless told otherwise.
pub const DEFAULT_RUNTIME: &str = "io.containerd.runc.v2";

/// The snapshotter containers get unless told otherwise.
pub const DEFAULT_SNAPSHOTTER: &str = "overlayfs";

/// A mount added to a container's spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountSpec {
    /// Filesystem type, such as `bind` or `tmpfs`.
    pub kind: String,
    /// Source on the host (or a name for virtual filesystems).
    pub source: String,
    /// Where it appears in the container.
    pub destination: String,
    /// Mount options, such as `rbind`, `ro`.
    pub options: Vec<String>,
}

impl MountSpec {
    /// Parses `ctr`'s form: `type=bind,src=/a,dst=/b,options=rbind:ro`.
    pub fn parse(text: &str) -> Result<MountSpec, String> {
        let mut mount = MountSpec {
            kind: "bind".into(),
            source: String::new(),
            destination: String::new(),
            options: Vec::new(),
        };
        for field in text.split(',') {
            let (key, value) = field
                .split_once('=')
                .ok_or_else(|| format!("mount {text:?}: {field:?} is not key=value"))?;
            match key {
                "type" => mount.kind = value.into(),
                "src" | "source" => mount.source = value.into(),
                "dst" | "destination" | "target" => mount.destination = value.into(),
                "options" => mount.options = value.split(':').map(str::to_owned).collect(),
                other => return Err(format!("mount {text:?}: unknown key {other:?}")),
            }
        }
        if mount.destination.is_empty() {
            return Err(format!("mount {text:?}: dst= is required"));
        }
        if mount.kind == "bind" && mount.options.is_empty() {
            mount.options = vec!["rbind".into()];
        }
        Ok(mount)
    }
}

/// What a new container is: its id, image, and how its process runs.
#[derive(Debug, Clone)]
pub struct NewContainer {
    /// Its id.
    pub id: String,
    /// The image it runs.
    pub image: String,
    /// The runtime, `io.containerd.runc.v2` by default.
    pub runtime: String,
    /// The snapshotter its root filesystem comes from, `overlayfs` by default.
    pub snapshotter: String,
    /// Arguments; the image's entrypoint and command when `None`.
    pub args: Option<Vec<String>>,
    /// `KEY=value` pairs added to (or replacing those of) the image's environment.
    pub env: Vec<String>,
    /// Working directory; the image's, else `/`.
    pub cwd: Option<String>,
    /// Numeric `uid[:gid]`; the image's, else root.
    pub user: Option<String>,
    /// Whether the process gets a terminal.
    pub tty: bool,
    /// Extra mounts.
    pub mounts: Vec<MountSpec>,
    /// Memory limit in bytes.
    pub memory_limit: Option<u64>,
    /// CPU limit in CPUs (quota over a 100 ms period).
    pub cpus: Option<f64>,
    /// Share the host's network namespace.
    pub host_network: bool,
    /// Mount the root filesystem read-only.
    pub readonly_rootfs: bool,
    /// Labels on the container record.
    pub labels: HashMap<String, String>,
}

impl NewContainer {
    /// A container `id` from image `image` with the defaults.
    pub fn new(id: &str, image: &str) -> NewContainer {
        NewContainer {
            id: id.to_owned(),
            image: image.to_owned(),
            runtime: DEFAULT_RUNTIME.to_owned(),
            snapshotter: DEFAULT_SNAPSHOTTER.to_owned(),
            args: None,
            env: Vec::new(),
            cwd: None,
            user: None,
            tty: false,
            mounts: Vec::new(),
            memory_limit: None,
            cpus: None,
            host_network: false,
            readonly_rootfs: false,
            labels: HashMap::new(),
        }
    }

    /// Runs `args` instead of the image's command.
    pub fn args<I: IntoIterator<Item = S>, S: Into<String>>(mut self, args: I) -> NewContainer {
        self.args = Some(args.into_iter().map(Into::into).collect());
        self
    }

    /// Adds `KEY=value` to the environment.
    pub fn env(mut self, pair: &str) -> NewContainer {
        self.env.push(pair.to_owned());
        self
    }

    /// Gives the process a terminal.
    pub fn tty(mut self, tty: bool) -> NewContainer {
        self.tty = tty;
        self
    }

    /// Uses `runtime`.
    pub fn runtime(mut self, runtime: &str) -> NewContainer {
        self.runtime = runtime.to_owned();
        self
    }

    /// Uses `snapshotter`.
    pub fn snapshotter(mut self, snapshotter: &str) -> NewContainer {
        self.snapshotter = snapshotter.to_owned();
        self
    }
}

/// A container record.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Container {
    /// Its id.
    pub id: String,
    /// Its image.
    pub image: String,
    /// Its runtime.
    pub runtime: String,
    /// Its snapshotter.
    pub snapshotter: String,
    /// Its snapshot's key.
    pub snapshot_key: String,
    /// Its labels.
    pub labels: HashMap<String, String>,
    /// Its runtime spec (JSON).
    #[serde(skip)]
    pub spec: Option<Vec<u8>>,
}

impl Container {
    fn from_record(c: containers::Container) -> Container {
        Container {
            id: c.id,
            image: c.image,
            runtime: c.runtime.map(|r| r.name).unwrap_or_default(),
            snapshotter: c.snapshotter,
            snapshot_key: c.snapshot_key,
            labels: c.labels,
            spec: c.spec.map(|s| s.value),
        }
    }
}

impl Client {
    /// Creates a container from `options`: prepares its snapshot on the image's top layer
    /// (unpacking the image first if needed) and stores the record with its runtime spec.
    /// On failure nothing is left: the snapshot is made inside a lease.
    pub async fn create_container(&self, options: NewContainer) -> Result<Container, Error> {
        let lease = self.lease(Duration::from_secs(600)).await?;
        let result = lease.client().create_container_in_lease(&options).await;
        let released = lease.release().await;
        let container = result?;
        released?;
        Ok(container)
    }

    async fn create_container_in_lease(&self, options: &NewContainer) -> Result<Container, Error> {
        let resolved = self.resolve(&options.image, None).await?;
        let run = resolved.config.config.clone().unwrap_or_default();
        let spec = spec::build(self.namespace(), options, &run)?;
        let spec_json = serde_json::to_vec(&spec).map_err(|e| Error::Spec {
            id: options.id.clone(),
            reason: e.to_string(),
        })?;

        let top = oci::chain_ids(&resolved.config.rootfs.diff_ids)
            .pop()
            .unwrap_or_default();
        if !top.is_empty() && !self.snapshot_exists(&options.snapshotter, &top).await? {
            self.unpack(&options.image, &options.snapshotter).await?;
        }
        let prepare = snapshots::PrepareSnapshotRequest {
            snapshotter: options.snapshotter.clone(),
            key: options.id.clone(),
            parent: top,
            labels: HashMap::new(),
        };
        self.unary(
            "snapshots.Prepare",
            format!("snapshot {} in {}", options.id, options.snapshotter),
            async { self.snapshots().prepare(prepare).await },
        )
        .await?;

        let record = containers::Container {
            id: options.id.clone(),
            labels: options.labels.clone(),
            image: options.image.clone(),
            runtime: Some(containers::container::Runtime {
                name: options.runtime.clone(),
                options: None,
            }),
            spec: Some(Any {
                type_url: spec::SPEC_TYPE_URL.to_owned(),
                value: spec_json,
            }),
            snapshotter: options.snapshotter.clone(),
            snapshot_key: options.id.clone(),
            ..Default::default()
        };
        let request = containers::CreateContainerRequest {
            container: Some(record),
        };
        let created = self
            .unary(
                "containers.Create",
                format!("container {}", options.id),
                async { self.containers().create(request).await },
            )
            .await?;
        created
            .container
            .map(Container::from_record)
            .ok_or_else(|| Error::Call {
                call: "containers.Create",
                object: format!("container {}", options.id),
                code: tonic::Code::Internal,
                message: "containerd answered without the container".into(),
            })
    }

    /// Container `id`.
    pub async fn get_container(&self, id: &str) -> Result<Container, Error> {
        let request = containers::GetContainerRequest { id: id.to_owned() };
        let got = self
            .unary("containers.Get", format!("container {id}"), async {
                self.containers().get(request).await
            })
            .await?;
        got.container
            .map(Container::from_record)
            .ok_or_else(|| Error::Call {
                call: "containers.Get",
                object: format!("container {id}"),
                code: tonic::Code::Internal,
                message: "containerd answered without the container".into(),
            })
    }

    /// Containers matching `filters` (containerd's filter syntax; empty for all).
    pub async fn list_containers(&self, filters: &[&str]) -> Result<Vec<Container>, Error> {
        let request = containers::ListContainersRequest {
            filters: filters.iter().map(|f| f.to_string()).collect(),
        };
        let listed = self
            .unary(
                "containers.List",
                format!("namespace {}", self.namespace()),
                async { self.containers().list(request).await },
            )
            .await?;
        Ok(listed
            .containers
            .into_iter()
            .map(Container::from_record)
            .collect())
    }

    /// Deletes container `id` and its snapshot.
    pub async fn delete_container(&self, id: &str) -> Result<(), Error> {
        let container = self.get_container(id).await?;
        let request = containers::DeleteContainerRequest { id: id.to_owned() };
        self.unary("containers.Delete", format!("container {id}"), async {
            self.containers().delete(request).await
        })
        .await?;
        if !container.snapshot_key.is_empty() {
            let remove = snapshots::RemoveSnapshotRequest {
                snapshotter: container.snapshotter.clone(),
                key: container.snapshot_key.clone(),
            };
            match self
                .unary(
                    "snapshots.Remove",
                    format!(
                        "snapshot {} in {}",
                        container.snapshot_key, container.snapshotter
                    ),
                    async { self.snapshots().remove(remove).await },
                )
                .await
            {
                Err(e) if !e.is_not_found() => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }
}
