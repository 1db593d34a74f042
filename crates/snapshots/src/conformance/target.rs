//! Where the conformance calls go: a snapshotter's own socket, or containerd in front of it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ctrd_api::containerd::services::leases::v1 as leases;
use ctrd_api::containerd::services::snapshots::v1 as api;
use ctrd_api::containerd::services::version::v1 as version;
use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint};

use crate::{Error, Result};

/// The header containerd reads a call's namespace from.
const NAMESPACE_HEADER: &str = "containerd-namespace";
/// The header containerd reads a call's lease from.
const LEASE_HEADER: &str = "containerd-lease";
/// The number of layers the `layers_128` case stacks by default.
const DEFAULT_LAYERS: usize = 128;

/// A snapshotter to run the cases against, and how to reach it.
#[derive(Debug, Clone)]
pub struct Target {
    channel: Channel,
    snapshotter: String,
    namespace: String,
    lease: Option<String>,
    folders: Option<PathBuf>,
    layers: usize,
    /// containerd's version (major, minor) through containerd; `None` for a direct target.
    daemon: Option<(u32, u32)>,
}

impl Target {
    /// Calls the snapshotter's own gRPC socket (a proxy plugin's `address`), as containerd
    /// would. Removals take effect at once, and the cases call `Cleanup` after each case.
    pub async fn direct(socket: &Path) -> Result<Target> {
        Ok(Target {
            channel: unix_channel(socket).await?,
            snapshotter: String::new(),
            namespace: "default".into(),
            lease: None,
            folders: None,
            layers: DEFAULT_LAYERS,
            daemon: None,
        })
    }

    /// Calls containerd's `Snapshots` service at `containerd_socket` for the snapshotter
    /// containerd knows as `snapshotter`, in `namespace`. Every call runs in one lease this
    /// makes (`NAMESPACE-conformance`); containerd removes snapshots from the snapshotter
    /// only when it collects garbage, which the cases trigger by ending the lease. It asks
    /// containerd's version once, for [`Target::commit_carries_parent`].
    pub async fn through_containerd(
        containerd_socket: &Path,
        snapshotter: &str,
        namespace: &str,
    ) -> Result<Target> {
        let channel = unix_channel(containerd_socket).await?;
        let answer = version::version_client::VersionClient::new(channel.clone())
            .version(())
            .await
            .map_err(|status| Error::Conformance {
                case: "set-up",
                check: format!("asking containerd's version: {}", status.message()),
            })?
            .into_inner();
        let daemon = major_minor(&answer.version).ok_or_else(|| Error::Conformance {
            case: "set-up",
            check: format!(
                "containerd's version {:?} is not MAJOR.MINOR...",
                answer.version
            ),
        })?;
        let target = Target {
            channel,
            snapshotter: snapshotter.into(),
            namespace: namespace.into(),
            lease: Some(format!("{namespace}-conformance")),
            folders: None,
            layers: DEFAULT_LAYERS,
            daemon: Some(daemon),
        };
        target.new_lease().await?;
        Ok(target)
    }

    /// Also checks, after each case, that `folder` is empty once the case's snapshots are
    /// gone (for a snapshotter that keeps one entry per snapshot there, such as the overlay
    /// snapshotter's `ROOT/snapshots`): nothing leaks on disk.
    pub fn with_folders(self, folder: impl Into<PathBuf>) -> Target {
        Target {
            folders: Some(folder.into()),
            ..self
        }
    }

    /// Stacks `layers` layers in the `layers_128` case instead of 128 (fewer for a quick run;
    /// 128 is what makes an overlay `lowerdir` longer than a page).
    pub fn with_layers(self, layers: usize) -> Target {
        Target { layers, ..self }
    }

    /// Whether containerd sits between the cases and the snapshotter.
    pub fn through_containerd_daemon(&self) -> bool {
        self.lease.is_some()
    }

    /// Whether `CommitSnapshotRequest.parent` (commit onto another parent, "rebase") reaches
    /// the snapshotter: always for a direct target; through containerd only from 2.2 on
    /// (older daemons know no such field and drop it, committing onto no parent).
    pub fn commit_carries_parent(&self) -> bool {
        self.daemon.is_none_or(|version| version >= (2, 2))
    }

    /// containerd's version as `MAJOR.MINOR` through containerd; `None` for a direct target.
    pub fn containerd_version(&self) -> Option<String> {
        self.daemon.map(|(major, minor)| format!("{major}.{minor}"))
    }

    /// The number of layers the `layers_128` case stacks.
    pub fn layers(&self) -> usize {
        self.layers
    }

    /// The folder checked for leftovers, if any.
    pub fn folders(&self) -> Option<&Path> {
        self.folders.as_deref()
    }

    /// The snapshotter's name in requests (empty for a direct target).
    pub(crate) fn snapshotter(&self) -> String {
        self.snapshotter.clone()
    }

    pub(crate) fn snapshots(&self) -> api::snapshots_client::SnapshotsClient<Channel> {
        api::snapshots_client::SnapshotsClient::new(self.channel.clone())
    }

    /// `message` as a request in this target's namespace and lease.
    pub(crate) fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        let metadata = request.metadata_mut();
        if let Ok(value) = self.namespace.parse() {
            metadata.insert(NAMESPACE_HEADER, value);
        }
        if let Some(lease) = &self.lease
            && let Ok(value) = lease.parse()
        {
            metadata.insert(LEASE_HEADER, value);
        }
        request
    }

    async fn new_lease(&self) -> Result<()> {
        let Some(lease) = &self.lease else {
            return Ok(());
        };
        leases::leases_client::LeasesClient::new(self.channel.clone())
            .create(self.request(leases::CreateRequest {
                id: lease.clone(),
                labels: Default::default(),
            }))
            .await
            .map_err(|status| Error::Conformance {
                case: "set-up",
                check: format!("creating lease {lease}: {}", status.message()),
            })?;
        Ok(())
    }

    /// Through containerd: ends the lease with a synchronous garbage collection (which
    /// removes from the snapshotter what was removed in containerd) and takes a new one.
    /// Direct: calls `Cleanup`.
    pub(crate) async fn collect_garbage(&self) -> std::result::Result<(), tonic::Status> {
        match &self.lease {
            Some(lease) => {
                leases::leases_client::LeasesClient::new(self.channel.clone())
                    .delete(self.request(leases::DeleteRequest {
                        id: lease.clone(),
                        sync: true,
                    }))
                    .await?;
                self.new_lease()
                    .await
                    .map_err(|e| tonic::Status::internal(e.to_string()))
            }
            None => self
                .snapshots()
                .cleanup(self.request(api::CleanupRequest {
                    snapshotter: self.snapshotter(),
                }))
                .await
                .map(drop),
        }
    }
}

/// `(major, minor)` of a version as containerd reports it (`v2.4.2`, `2.1.9+unknown`,
/// `1.6.20~ds1`).
fn major_minor(version: &str) -> Option<(u32, u32)> {
    let mut parts = version.trim_start_matches('v').split(['.', '+', '~', '-']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// A gRPC channel to the server on the unix socket `path`.
async fn unix_channel(path: &Path) -> Result<Channel> {
    let socket = path.to_path_buf();
    // The URI is never resolved: the connector dials the socket.
    let endpoint = Endpoint::from_static("http://snapshotter.invalid")
        .connect_timeout(Duration::from_secs(10));
    endpoint
        .connect_with_connector(tower::service_fn(move |_| {
            let socket = socket.clone();
            async move {
                let stream = tokio::net::UnixStream::connect(socket).await?;
                Ok::<_, std::io::Error>(TokioIo::new(stream))
            }
        }))
        .await
        .map_err(|error| Error::Connect {
            address: path.to_path_buf(),
            reason: innermost(&error),
        })
}

/// The most specific message in an error's chain (tonic's own says only "transport error").
fn innermost(error: &(dyn std::error::Error + 'static)) -> String {
    let mut current = error;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

#[cfg(test)]
mod tests {
    use super::major_minor;

    #[test]
    fn containerd_versions_as_the_daemons_report_them() {
        assert_eq!(major_minor("v2.4.2"), Some((2, 4)));
        assert_eq!(major_minor("2.1.9+unknown"), Some((2, 1)));
        assert_eq!(major_minor("1.6.20~ds1"), Some((1, 6)));
        assert_eq!(major_minor("v2"), None);
        assert_eq!(major_minor(""), None);
    }
}
