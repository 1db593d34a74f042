//! A tonic channel over a unix socket, with connect and per-call timeouts.

use std::path::Path;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint};

use crate::Error;

/// How to connect: timeouts for the connection and for each unary call.
#[derive(Debug, Clone, Copy)]
pub struct ConnectOptions {
    /// How long dialling the socket and the HTTP/2 handshake may take.
    pub connect_timeout: Duration,
    /// How long each unary call may take; `None` waits forever. Streams and waits (events,
    /// `Wait`) are never cut by it.
    pub call_timeout: Option<Duration>,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            connect_timeout: Duration::from_secs(10),
            call_timeout: Some(Duration::from_secs(60)),
        }
    }
}

/// Connects a channel to the gRPC server listening on the unix socket `path`.
pub(crate) async fn unix_channel(path: &Path, timeout: Duration) -> Result<Channel, Error> {
    let socket = path.to_path_buf();
    // The URI is required by the HTTP/2 layer but never resolved: the connector dials the socket.
    let endpoint = Endpoint::from_static("http://containerd.invalid").connect_timeout(timeout);
    let connecting = endpoint.connect_with_connector(tower::service_fn(move |_| {
        let socket = socket.clone();
        async move {
            let stream = tokio::net::UnixStream::connect(socket).await?;
            Ok::<_, std::io::Error>(TokioIo::new(stream))
        }
    }));
    match tokio::time::timeout(timeout, connecting).await {
        Ok(Ok(channel)) => Ok(channel),
        Ok(Err(e)) => Err(Error::Connect {
            address: path.to_path_buf(),
            reason: innermost(&e),
        }),
        Err(_) => Err(Error::Connect {
            address: path.to_path_buf(),
            reason: format!("no connection within {timeout:?}"),
        }),
    }
}

/// The most specific message in an error's chain (tonic's own says only "transport error").
fn innermost(error: &(dyn std::error::Error + 'static)) -> String {
    let mut current = error;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}
