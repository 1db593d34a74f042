//! Publishing events to containerd: a bounded queue drained in order by one task, over ttrpc
//! (`containerd.services.events.ttrpc.v1.Events/Forward`) with retries and reconnection, and
//! the publish binary (`containerd publish`) as the fallback when ttrpc keeps failing.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use ctrd_api::containerd::services::events::ttrpc::v1::{ForwardRequest, events_ttrpc_async};
use ctrd_api::containerd::types::Envelope;
use ctrd_api::prost_types::Timestamp;
use ctrd_api::{Event, ttrpc};
use prost::Message;
use tokio::sync::{mpsc, oneshot};

use crate::reaper::Reaper;

/// How many events may wait to be sent before [`Publisher::publish`] refuses more.
pub const QUEUE: usize = 1024;
/// Attempts over ttrpc before the publish binary is tried.
const ATTEMPTS: u32 = 4;

/// Where events go.
#[derive(Debug, Clone, Default)]
pub struct Target {
    /// containerd's ttrpc socket (`TTRPC_ADDRESS`).
    pub ttrpc_address: String,
    /// containerd's gRPC socket, for the publish binary.
    pub grpc_address: String,
    /// The publish binary (`-publish-binary`), usually containerd itself.
    pub publish_binary: String,
    /// The namespace events are published in.
    pub namespace: String,
}

/// Why an event was not queued.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The queue is full: containerd is not taking events.
    #[error("the event queue is full ({QUEUE} events wait); dropping {topic}")]
    Full {
        /// The dropped event's topic.
        topic: &'static str,
    },
    /// The publishing task has stopped.
    #[error("the publisher has stopped")]
    Closed,
}

enum Queued {
    Event(Envelope),
    Flush(oneshot::Sender<()>),
}

/// A handle to queue events; cheap to clone.
#[derive(Debug, Clone)]
pub struct Publisher {
    tx: mpsc::Sender<Queued>,
    namespace: String,
}

impl std::fmt::Debug for Queued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Queued::Event(e) => write!(f, "Event({})", e.topic),
            Queued::Flush(_) => write!(f, "Flush"),
        }
    }
}

impl Publisher {
    /// Starts the publishing task (needs a tokio runtime). `reaper` runs the publish binary.
    pub fn start(target: Target, reaper: Option<Reaper>) -> Publisher {
        let (tx, rx) = mpsc::channel(QUEUE);
        let namespace = target.namespace.clone();
        tokio::spawn(drain(target, reaper, rx));
        Publisher { tx, namespace }
    }

    /// Queues `event` under its topic, stamped now. Never blocks.
    pub fn publish<E: Event>(&self, event: &E) -> Result<(), PublishError> {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        let envelope = Envelope {
            timestamp: Some(Timestamp {
                seconds: now.as_secs() as i64,
                nanos: now.subsec_nanos() as i32,
            }),
            namespace: self.namespace.clone(),
            topic: E::TOPIC.to_owned(),
            event: Some(event.to_any()),
        };
        self.tx
            .try_send(Queued::Event(envelope))
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => PublishError::Full { topic: E::TOPIC },
                mpsc::error::TrySendError::Closed(_) => PublishError::Closed,
            })
    }

    /// Waits until every event queued before this call was sent (or given up), at most
    /// `timeout`.
    pub async fn flush(&self, timeout: Duration) -> bool {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Queued::Flush(tx)).await.is_err() {
            return false;
        }
        tokio::time::timeout(timeout, rx).await.is_ok()
    }
}

async fn drain(target: Target, reaper: Option<Reaper>, mut rx: mpsc::Receiver<Queued>) {
    let mut client: Option<events_ttrpc_async::EventsClient> = None;
    while let Some(message) = rx.recv().await {
        let envelope = match message {
            Queued::Flush(done) => {
                let _ = done.send(());
                continue;
            }
            Queued::Event(envelope) => envelope,
        };
        let mut sent = false;
        for attempt in 0..ATTEMPTS {
            if client.is_none() {
                client = connect(&target.ttrpc_address).await;
            }
            if let Some(c) = &client {
                let request = ForwardRequest {
                    envelope: Some(envelope.clone()),
                };
                let ctx = ttrpc::context::with_duration(Duration::from_secs(5));
                match c.forward(ctx, &request).await {
                    Ok(_) => {
                        sent = true;
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(topic = %envelope.topic, attempt, error = %e, "forwarding an event failed");
                        client = None;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
        }
        if !sent {
            publish_binary(&target, reaper.as_ref(), &envelope).await;
        }
    }
}

async fn connect(address: &str) -> Option<events_ttrpc_async::EventsClient> {
    if address.is_empty() {
        return None;
    }
    let address = if address.starts_with("unix://") {
        address.to_owned()
    } else {
        format!("unix://{address}")
    };
    match ttrpc::r#async::Client::connect(&address).await {
        Ok(client) => Some(events_ttrpc_async::EventsClient::new(client)),
        Err(e) => {
            tracing::warn!(%address, error = %e, "connecting to containerd's ttrpc socket failed");
            None
        }
    }
}

/// `containerd --address A publish --topic T --namespace N`, the event `Any` on stdin.
async fn publish_binary(target: &Target, reaper: Option<&Reaper>, envelope: &Envelope) {
    if target.publish_binary.is_empty() {
        tracing::error!(topic = %envelope.topic, "dropping an event: ttrpc failed and there is no publish binary");
        return;
    }
    let mut command = Command::new(&target.publish_binary);
    command
        .args([
            "--address",
            &target.grpc_address,
            "publish",
            "--topic",
            &envelope.topic,
        ])
        .args(["--namespace", &envelope.namespace])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let payload = envelope
        .event
        .as_ref()
        .map(Message::encode_to_vec)
        .unwrap_or_default();
    let spawned = match reaper {
        Some(r) => r.spawn(&mut command).map(|(c, exit)| (c, Some(exit))),
        None => command.spawn().map(|c| (c, None)),
    };
    let (mut child, exit) = match spawned {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(topic = %envelope.topic, error = %e, "running the publish binary failed");
            return;
        }
    };
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(&payload);
    }
    let status = match exit {
        Some(exit) => exit.await.ok(),
        None => tokio::task::spawn_blocking(move || child.wait().ok())
            .await
            .ok()
            .flatten(),
    };
    if !status.is_some_and(|s| s.success()) {
        tracing::error!(topic = %envelope.topic, ?status, "the publish binary failed; the event is lost");
    }
}
