//! A tonic channel over a unix socket.

use std::path::Path;

use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint};

use crate::Error;

/// Connects a channel to the gRPC server listening on the unix socket `path`.
pub async fn unix_channel(path: &Path) -> Result<Channel, Error> {
    let socket = path.to_path_buf();
    // The URI is required by the HTTP/2 layer but never resolved: the connector below dials
    // the socket instead.
    let endpoint = Endpoint::from_static("http://containerd.invalid");
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
            error,
        })
}
