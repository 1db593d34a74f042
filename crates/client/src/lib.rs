//! A containerd client that does the work: leases, content, image import and unpack,
//! containers from OCI runtime specs, tasks with stdio, typed events. Errors name the call and
//! the object that failed.
//!
//! Import an image archive, run a container from it and read what it prints:
//!
//! ```no_run
//! use ctrd_client::{Client, ImportOptions, NewContainer, Stdio};
//! use tokio::io::AsyncReadExt;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Client::connect("/run/containerd/containerd.sock")
//!     .await?
//!     .try_with_namespace("example")?;
//! let images = client.import("busybox.tar", ImportOptions::default()).await?;
//! client.unpack(&images[0].name, "overlayfs").await?;
//!
//! let spec = NewContainer::new("hello", &images[0].name).args(["echo", "hello"]);
//! client.create_container(spec).await?;
//! let (task, mut io) = client.new_task("hello", Stdio::fifos(false)).await?;
//! let mut stdout = io.stdout.take().expect("a stdout pipe");
//! task.start().await?;
//! let mut said = String::new();
//! stdout.read_to_string(&mut said).await?;
//! let exit = task.wait().await?;
//! task.delete().await?;
//! client.delete_container("hello").await?;
//! println!("{said:?}, exit status {}", exit.code);
//! # Ok(())
//! # }
//! ```
//!
//! Pull from a private registry over HTTPS (a CA file, credentials for basic auth or its token
//! endpoint), another platform's manifest from an index, unpacked; a download that breaks off
//! resumes where containerd's copy ends:
//!
//! ```no_run
//! use ctrd_client::{Client, Credentials, ImportOptions, Platform, PullOptions};
//!
//! # async fn run(client: Client) -> Result<(), Box<dyn std::error::Error>> {
//! let options = PullOptions::from(ImportOptions::default().unpack("overlayfs"))
//!     .ca_file("/etc/ctrd/registry-ca.crt")
//!     .credentials(Credentials::new("me", "secret"));
//! let image = client.pull("registry.example:5000/team/app:v1", options).await?;
//! println!("{} {}", image.name, image.digest);
//! let arm = PullOptions::default().platform(Platform::parse("linux/arm64").expect("platform"));
//! client.pull("registry.example:5000/team/app:v1", arm).await?;
//! # Ok(())
//! # }
//! ```
//!
//! On containerd 2.x a pull goes through the daemon's transfer service (containerd fetches
//! and unpacks; progress and credentials travel over its streaming service), except with a
//! CA file; [`Route`] chooses explicitly:
//!
//! ```no_run
//! use ctrd_client::{Client, ImportOptions, Route};
//!
//! # async fn run(client: Client) -> Result<(), Box<dyn std::error::Error>> {
//! let here = ImportOptions::default().route(Route::Local).unpack("overlayfs");
//! client.pull("127.0.0.1:5000/team/app:v1", here).await?;
//! # Ok(())
//! # }
//! ```
//!
//! Exec into a running container, on a terminal:
//!
//! ```no_run
//! use ctrd_client::{Client, Stdio};
//! use tokio::io::AsyncReadExt;
//!
//! # async fn run(client: Client) -> Result<(), Box<dyn std::error::Error>> {
//! let task = client.load_task("web").await?;
//! let args = ["sh", "-c", "tty"].map(String::from);
//! let (exec, mut io) = task.exec("look", &args, Stdio::terminal(false)).await?;
//! let mut terminal = io.stdout.take().expect("a terminal pipe");
//! exec.start().await?;
//! exec.resize(120, 40).await?;
//! let mut said = String::new();
//! terminal.read_to_string(&mut said).await?;
//! let exit = exec.wait().await?;
//! exec.delete().await?;
//! println!("{said:?} (exit status {})", exit.code);
//! # Ok(())
//! # }
//! ```
//!
//! Every service client of `ctrd-api` stays reachable (`client.tasks()`, `client.content()`, ...)
//! for what the typed methods do not cover.

mod connect;
mod container;
mod content;
mod error;
mod events;
#[doc(hidden)]
pub mod fuzzing;
mod image;
mod introspection;
mod lease;
mod namespace;
mod snapshot;
mod spec;
mod stdio;
mod task;
mod transfer;

pub use connect::ConnectOptions;
pub use container::{Container, DEFAULT_RUNTIME, DEFAULT_SNAPSHOTTER, MountSpec, NewContainer};
pub use content::{BlobReader, BlobSource, ContentInfo, OpenAt};
pub use ctrd_api as api;
pub use error::Error;
pub use events::{Envelope, EventStream, TypedEvent};
pub use image::{Credentials, Image, ImportOptions, Platform, Progress, PullOptions};
pub use introspection::{Plugin, Version};
pub use lease::Lease;
pub use namespace::{CallMetadata, Namespace};
pub use snapshot::{SnapshotInfo, Usage};
pub use stdio::{FIFO_ROOT, Io, Stdio};
pub use task::{ExitStatus, Process, Task};
pub use transfer::Route;

use std::fmt::Display;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ctrd_api::containerd::services;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// The transport every service client of a [`Client`] runs over.
pub type Transport = InterceptedService<Channel, CallMetadata>;

/// A connection to containerd and the namespace (and lease) its calls act in.
///
/// Cloning is cheap: clones share the connection.
#[derive(Debug, Clone)]
pub struct Client {
    channel: Channel,
    metadata: CallMetadata,
    address: PathBuf,
    call_timeout: Option<Duration>,
}

impl From<Channel> for Client {
    /// A client over a channel made elsewhere (a custom transport), in namespace `default`
    /// and with the default per-call timeout.
    fn from(channel: Channel) -> Client {
        Client {
            channel,
            metadata: CallMetadata {
                namespace: Namespace::invalid("default"),
                lease: None,
            },
            address: PathBuf::new(),
            call_timeout: ConnectOptions::default().call_timeout,
        }
        .with_namespace("default")
    }
}

impl Client {
    /// Connects to containerd's gRPC socket with the default timeouts. Calls use the namespace
    /// `default` until [`with_namespace`](Client::with_namespace) sets another.
    pub async fn connect(address: impl AsRef<Path>) -> Result<Client, Error> {
        Client::connect_with(address, ConnectOptions::default()).await
    }

    /// Connects to containerd's gRPC socket with `options`.
    pub async fn connect_with(
        address: impl AsRef<Path>,
        options: ConnectOptions,
    ) -> Result<Client, Error> {
        let address = address.as_ref().to_path_buf();
        let channel = connect::unix_channel(&address, options.connect_timeout).await?;
        Ok(Client {
            address,
            call_timeout: options.call_timeout,
            ..Client::from(channel)
        })
    }

    /// The raw channel, for services this client does not wrap (such as Kubernetes' CRI,
    /// which containerd serves on the same socket: `ctrd_api::runtime::v1`). Calls on it
    /// carry no namespace and no timeout.
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// The same connection, acting in namespace `namespace`.
    ///
    /// An invalid name makes every call fail with `InvalidArgument`; use
    /// [`try_with_namespace`](Client::try_with_namespace) to check it up front.
    pub fn with_namespace(self, namespace: &str) -> Client {
        let namespace = Namespace::new(namespace).unwrap_or_else(|_| Namespace::invalid(namespace));
        Client {
            metadata: CallMetadata {
                namespace,
                ..self.metadata.clone()
            },
            ..self
        }
    }

    /// The same connection, acting in namespace `namespace`, which must be a valid name.
    pub fn try_with_namespace(self, namespace: &str) -> Result<Client, Error> {
        let namespace = Namespace::new(namespace)?;
        Ok(Client {
            metadata: CallMetadata {
                namespace,
                ..self.metadata.clone()
            },
            ..self
        })
    }

    /// The same connection with another per-call timeout (`None`: wait forever).
    pub fn with_call_timeout(self, timeout: Option<Duration>) -> Client {
        Client {
            call_timeout: timeout,
            ..self
        }
    }

    /// The namespace calls act in.
    pub fn namespace(&self) -> &str {
        self.metadata.namespace.as_str()
    }

    /// The socket this client is connected to (empty for clients made from a channel).
    pub fn address(&self) -> &Path {
        &self.address
    }

    /// The lease calls are made in, if any.
    pub fn lease_id(&self) -> Option<&str> {
        self.metadata.lease.as_deref()
    }

    /// Fails with [`Error::UnknownNamespace`] unless the namespace exists on the daemon.
    pub async fn require_namespace(&self) -> Result<(), Error> {
        let name = self.namespace().to_owned();
        let request = services::namespaces::v1::ListNamespacesRequest {
            filter: String::new(),
        };
        let listed = self
            .unary("namespaces.List", "of the daemon", async {
                self.namespaces().list(request).await
            })
            .await?;
        if listed.namespaces.iter().any(|n| n.name == name) {
            Ok(())
        } else {
            Err(Error::UnknownNamespace(name))
        }
    }

    fn transport(&self) -> Transport {
        InterceptedService::new(self.channel.clone(), self.metadata.clone())
    }

    /// The same connection, with every call made inside lease `id`.
    pub(crate) fn in_lease(&self, id: Option<String>) -> Client {
        Client {
            metadata: CallMetadata {
                lease: id,
                ..self.metadata.clone()
            },
            ..self.clone()
        }
    }

    /// Runs a unary call under the per-call timeout, naming `call` and `object` in its error.
    pub(crate) async fn unary<T>(
        &self,
        call: &'static str,
        object: impl Display,
        future: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    ) -> Result<T, Error> {
        let result = match self.call_timeout {
            Some(timeout) => match tokio::time::timeout(timeout, future).await {
                Ok(result) => result,
                Err(_) => {
                    return Err(Error::Timeout {
                        call,
                        object: object.to_string(),
                        timeout,
                    });
                }
            },
            None => future.await,
        };
        result
            .map(tonic::Response::into_inner)
            .map_err(|status| Error::call(call, object.to_string(), status))
    }
}

/// Accessors for each service, all sharing the connection, namespace and lease.
macro_rules! services {
    ($($(#[$doc:meta])* $name:ident => $client:ty;)*) => {
        impl Client {
            $(
                $(#[$doc])*
                pub fn $name(&self) -> $client {
                    <$client>::new(self.transport())
                        .max_decoding_message_size(64 << 20)
                }
            )*
        }
    };
}

services! {
    /// The containers service.
    containers => services::containers::v1::containers_client::ContainersClient<Transport>;
    /// The content store.
    content => services::content::v1::content_client::ContentClient<Transport>;
    /// The diff service.
    diff => services::diff::v1::diff_client::DiffClient<Transport>;
    /// The events service.
    events => services::events::v1::events_client::EventsClient<Transport>;
    /// The images service.
    images => services::images::v1::images_client::ImagesClient<Transport>;
    /// The introspection service.
    introspection => services::introspection::v1::introspection_client::IntrospectionClient<Transport>;
    /// The leases service.
    leases => services::leases::v1::leases_client::LeasesClient<Transport>;
    /// The namespaces service.
    namespaces => services::namespaces::v1::namespaces_client::NamespacesClient<Transport>;
    /// The sandbox store (containerd 2.x).
    sandbox_store => services::sandbox::v1::store_client::StoreClient<Transport>;
    /// The sandbox controller (containerd 2.x).
    sandbox_controller => services::sandbox::v1::controller_client::ControllerClient<Transport>;
    /// The snapshots service.
    snapshots => services::snapshots::v1::snapshots_client::SnapshotsClient<Transport>;
    /// The streaming service (containerd 2.x).
    streaming => services::streaming::v1::streaming_client::StreamingClient<Transport>;
    /// The tasks service.
    tasks => services::tasks::v1::tasks_client::TasksClient<Transport>;
    /// The transfer service (containerd 2.x).
    transfer => services::transfer::v1::transfer_client::TransferClient<Transport>;
    /// The version service.
    version => services::version::v1::version_client::VersionClient<Transport>;
}
