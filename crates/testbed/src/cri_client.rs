//! A CRI client as kubelet uses one: blocking calls on containerd's CRI services, pods and
//! containers configured the way kubelet configures them, everything it made removed on drop.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use cri::image_service_client::ImageServiceClient;
use cri::runtime_service_client::RuntimeServiceClient;
use ctrd_api::runtime::v1 as cri;
use ctrd_api::tonic;
use tonic::transport::Channel;

use crate::{Containerd, Error};

/// The prefix of the cgroup (cgroupfs driver path) each client makes its pods' cgroups under,
/// as kubelet's `/kubepods`: `/ctrd-cri-SUFFIX`, one per client, so that removing one client's
/// never races with another creating a pod.
pub const POD_CGROUP_ROOT: &str = "/ctrd-cri";

/// A pod this client started: its id and the configuration containers in it are created with.
#[derive(Debug, Clone)]
pub struct Pod {
    /// The sandbox id containerd gave it.
    pub id: String,
    /// What it was started with.
    pub config: cri::PodSandboxConfig,
}

/// A blocking CRI client for a [`Containerd`] started with
/// [`DaemonOptions::cri`](crate::DaemonOptions::cri).
///
/// Pods made with [`CriClient::run_pod`] are stopped and removed when it is dropped, and their
/// cgroups and log folders with them.
#[derive(Debug)]
pub struct CriClient {
    rt: tokio::runtime::Runtime,
    runtime: RuntimeServiceClient<Channel>,
    images: ImageServiceClient<Channel>,
    logs: tempfile::TempDir,
    pods: Mutex<Vec<Pod>>,
}

impl CriClient {
    /// Connects to `containerd`'s CRI services (on its gRPC socket).
    pub fn connect(containerd: &Containerd) -> Result<CriClient, Error> {
        CriClient::connect_to(&containerd.grpc_address())
    }

    /// Connects to the CRI services served on the unix socket `address`.
    pub fn connect_to(address: &Path) -> Result<CriClient, Error> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::io("tokio runtime", e))?;
        let client = rt
            .block_on(ctrd_client::Client::connect(address))
            .map_err(|e| Error::Cri {
                call: "connect".into(),
                error: e.to_string(),
            })?;
        let logs = tempfile::Builder::new()
            .prefix("ctrd-pod-logs-")
            .tempdir_in("/tmp")
            .map_err(|e| Error::io("/tmp", e))?;
        Ok(CriClient {
            runtime: RuntimeServiceClient::new(client.channel()),
            images: ImageServiceClient::new(client.channel()),
            rt,
            logs,
            pods: Mutex::new(Vec::new()),
        })
    }

    /// Runs one call on the runtime service and waits for its answer.
    ///
    /// ```no_run
    /// # fn f(cri: &ctrd_testbed::CriClient) -> Result<(), ctrd_api::tonic::Status> {
    /// let version = cri.runtime(|mut c| async move { c.version(ctrd_api::runtime::v1::VersionRequest::default()).await })?;
    /// println!("{}", version.runtime_version);
    /// # Ok(()) }
    /// ```
    pub fn runtime<T, F, Fut>(&self, call: F) -> Result<T, tonic::Status>
    where
        F: FnOnce(RuntimeServiceClient<Channel>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        self.rt
            .block_on(call(self.runtime.clone()))
            .map(tonic::Response::into_inner)
    }

    /// Runs one call on the image service and waits for its answer.
    pub fn images<T, F, Fut>(&self, call: F) -> Result<T, tonic::Status>
    where
        F: FnOnce(ImageServiceClient<Channel>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        self.rt
            .block_on(call(self.images.clone()))
            .map(tonic::Response::into_inner)
    }

    /// Runs any future on this client's runtime (for calls racing each other, or streams).
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.rt.block_on(future)
    }

    /// A raw runtime service client, for use inside [`CriClient::block_on`].
    pub fn runtime_client(&self) -> RuntimeServiceClient<Channel> {
        self.runtime.clone()
    }

    /// The cgroup this client's pods' cgroups are made under (`/ctrd-cri-SUFFIX`).
    pub fn cgroup_root(&self) -> String {
        let suffix = self
            .logs
            .path()
            .file_name()
            .map(|n| n.to_string_lossy().replace("ctrd-pod-logs-", ""))
            .unwrap_or_default();
        format!("{POD_CGROUP_ROOT}-{suffix}")
    }

    /// The folder pods' log folders are made in.
    pub fn log_root(&self) -> &Path {
        self.logs.path()
    }

    /// A pod configuration as kubelet writes one for a pod named `name`: its own network
    /// namespace (or the host's), a log folder, a cgroup parent under this client's
    /// [`CriClient::cgroup_root`],
    /// private pid namespaces per container.
    pub fn pod_config(&self, name: &str, host_network: bool) -> cri::PodSandboxConfig {
        let uid = format!("{name}-{}", std::process::id());
        let network = if host_network {
            cri::NamespaceMode::Node
        } else {
            cri::NamespaceMode::Pod
        };
        cri::PodSandboxConfig {
            metadata: Some(cri::PodSandboxMetadata {
                name: name.into(),
                uid: uid.clone(),
                namespace: "default".into(),
                attempt: 0,
            }),
            // runc refuses a hostname without a UTS namespace of the pod's own.
            hostname: if host_network {
                String::new()
            } else {
                name.into()
            },
            log_directory: self.logs.path().join(&uid).display().to_string(),
            linux: Some(cri::LinuxPodSandboxConfig {
                cgroup_parent: format!("{}/pod{uid}", self.cgroup_root()),
                security_context: Some(cri::LinuxSandboxSecurityContext {
                    namespace_options: Some(cri::NamespaceOption {
                        network: network as i32,
                        pid: cri::NamespaceMode::Container as i32,
                        ipc: cri::NamespaceMode::Pod as i32,
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// A container configuration as kubelet writes one: `image`, `command`, a log file named
    /// after the container in the pod's log folder, its own pid namespace.
    pub fn container_config(name: &str, image: &str, command: &[&str]) -> cri::ContainerConfig {
        cri::ContainerConfig {
            metadata: Some(cri::ContainerMetadata {
                name: name.into(),
                attempt: 0,
            }),
            image: Some(cri::ImageSpec {
                image: image.into(),
                ..Default::default()
            }),
            command: command.iter().map(|s| (*s).to_owned()).collect(),
            log_path: format!("{name}.log"),
            linux: Some(cri::LinuxContainerConfig {
                resources: Some(cri::LinuxContainerResources::default()),
                security_context: Some(cri::LinuxContainerSecurityContext {
                    namespace_options: Some(cri::NamespaceOption {
                        pid: cri::NamespaceMode::Container as i32,
                        ipc: cri::NamespaceMode::Pod as i32,
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
            }),
            ..Default::default()
        }
    }

    /// Starts a pod with `config` on runtime handler `handler` (empty: the default), after
    /// making its log folder as kubelet does.
    pub fn run_pod(&self, config: cri::PodSandboxConfig, handler: &str) -> Result<Pod, Error> {
        let logs = PathBuf::from(&config.log_directory);
        std::fs::create_dir_all(&logs).map_err(|e| Error::io(&logs, e))?;
        let request = cri::RunPodSandboxRequest {
            config: Some(config.clone()),
            runtime_handler: handler.into(),
        };
        let answer = self
            .runtime(|mut c| async move { c.run_pod_sandbox(request).await })
            .map_err(|s| Error::cri("RunPodSandbox", &s))?;
        let pod = Pod {
            id: answer.pod_sandbox_id,
            config,
        };
        if let Ok(mut pods) = self.pods.lock() {
            pods.push(pod.clone());
        }
        Ok(pod)
    }

    /// Creates a container with `config` in `pod`; its id.
    pub fn create_container(
        &self,
        pod: &Pod,
        config: cri::ContainerConfig,
    ) -> Result<String, Error> {
        let request = cri::CreateContainerRequest {
            pod_sandbox_id: pod.id.clone(),
            config: Some(config),
            sandbox_config: Some(pod.config.clone()),
        };
        self.runtime(|mut c| async move { c.create_container(request).await })
            .map(|r| r.container_id)
            .map_err(|s| Error::cri("CreateContainer", &s))
    }

    /// Starts container `id`.
    pub fn start_container(&self, id: &str) -> Result<(), Error> {
        let request = cri::StartContainerRequest {
            container_id: id.into(),
        };
        self.runtime(|mut c| async move { c.start_container(request).await })
            .map(drop)
            .map_err(|s| Error::cri("StartContainer", &s))
    }

    /// Creates and starts a container with `config` in `pod`; its id.
    pub fn run_container(&self, pod: &Pod, config: cri::ContainerConfig) -> Result<String, Error> {
        let id = self.create_container(pod, config)?;
        self.start_container(&id)?;
        Ok(id)
    }

    /// The status of container `id` (with `verbose` info).
    pub fn container_status(&self, id: &str) -> Result<cri::ContainerStatus, Error> {
        let request = cri::ContainerStatusRequest {
            container_id: id.into(),
            verbose: false,
        };
        self.runtime(|mut c| async move { c.container_status(request).await })
            .map_err(|s| Error::cri("ContainerStatus", &s))?
            .status
            .ok_or_else(|| Error::Cri {
                call: "ContainerStatus".into(),
                error: format!("no status for {id}"),
            })
    }

    /// Stops and removes `pod` (its containers with it).
    pub fn remove_pod(&self, pod: &Pod) -> Result<(), Error> {
        let id = pod.id.clone();
        self.runtime(|mut c| async move {
            c.stop_pod_sandbox(cri::StopPodSandboxRequest { pod_sandbox_id: id })
                .await
        })
        .map_err(|s| Error::cri("StopPodSandbox", &s))?;
        let id = pod.id.clone();
        self.runtime(|mut c| async move {
            c.remove_pod_sandbox(cri::RemovePodSandboxRequest { pod_sandbox_id: id })
                .await
        })
        .map_err(|s| Error::cri("RemovePodSandbox", &s))?;
        if let Ok(mut pods) = self.pods.lock() {
            pods.retain(|p| p.id != pod.id);
        }
        remove_pod_cgroups(&pod.config);
        Ok(())
    }
}

impl Drop for CriClient {
    fn drop(&mut self) {
        let pods = self
            .pods
            .lock()
            .map(|mut p| std::mem::take(&mut *p))
            .unwrap_or_default();
        for pod in &pods {
            let _ = self.remove_pod(pod);
            remove_pod_cgroups(&pod.config);
        }
        crate::cleanup::remove_empty_cgroups(self.cgroup_root().trim_start_matches('/'));
    }
}

/// Removes a pod's cgroup parent in every hierarchy once empty (runc removes the
/// containers' own).
fn remove_pod_cgroups(config: &cri::PodSandboxConfig) {
    if let Some(linux) = &config.linux {
        let relative = linux.cgroup_parent.trim_start_matches('/');
        if !relative.is_empty() {
            crate::cleanup::remove_empty_cgroups(relative);
        }
    }
}
