//! A containerd client: the generated gRPC clients of `ctrd-api`, connected over containerd's
//! unix socket, with the namespace every call needs.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let client = ctrd_client::Client::connect("/run/containerd/containerd.sock")
//!     .await?
//!     .with_namespace("default");
//! let version = client.version().version(()).await?.into_inner();
//! println!("containerd {}", version.version);
//! # Ok(())
//! # }
//! ```

mod connect;
mod error;
mod namespace;

pub use ctrd_api as api;
pub use error::Error;
pub use namespace::Namespace;

use std::path::{Path, PathBuf};

use ctrd_api::containerd::services;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// The transport every service client of a [`Client`] runs over.
pub type Transport = InterceptedService<Channel, Namespace>;

/// A connection to containerd and the namespace its calls act in.
///
/// Cloning is cheap: clones share the connection.
#[derive(Debug, Clone)]
pub struct Client {
    channel: Channel,
    namespace: Namespace,
    address: PathBuf,
}

impl Client {
    /// Connects to containerd's gRPC socket. Calls use the namespace `default` until
    /// [`with_namespace`](Client::with_namespace) sets another.
    pub async fn connect(address: impl AsRef<Path>) -> Result<Client, Error> {
        let address = address.as_ref().to_path_buf();
        let channel = connect::unix_channel(&address).await?;
        Ok(Client {
            channel,
            namespace: Namespace::new("default")?,
            address,
        })
    }

    /// The same connection, acting in namespace `namespace`.
    ///
    /// An invalid name makes every call fail with `InvalidArgument`; use
    /// [`try_with_namespace`](Client::try_with_namespace) to check it up front.
    pub fn with_namespace(self, namespace: &str) -> Client {
        match Namespace::new(namespace) {
            Ok(namespace) => Client { namespace, ..self },
            Err(_) => Client {
                namespace: Namespace::invalid(namespace),
                ..self
            },
        }
    }

    /// The same connection, acting in namespace `namespace`, which must be a valid name.
    pub fn try_with_namespace(self, namespace: &str) -> Result<Client, Error> {
        Ok(Client {
            namespace: Namespace::new(namespace)?,
            ..self
        })
    }

    /// The namespace calls act in.
    pub fn namespace(&self) -> &str {
        self.namespace.as_str()
    }

    /// The socket this client is connected to.
    pub fn address(&self) -> &Path {
        &self.address
    }

    fn transport(&self) -> Transport {
        InterceptedService::new(self.channel.clone(), self.namespace.clone())
    }
}

/// Accessors for each service, all sharing the connection and namespace.
macro_rules! services {
    ($($(#[$doc:meta])* $name:ident => $client:ty;)*) => {
        impl Client {
            $(
                $(#[$doc])*
                pub fn $name(&self) -> $client {
                    <$client>::new(self.transport())
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
