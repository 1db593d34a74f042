//! Events: a subscription with filters, each event decoded to its typed message by the type
//! URL the generator gives every message.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::SystemTime;

use ctrd_api::TypeUrl;
use ctrd_api::containerd::events as ev;
use ctrd_api::containerd::services::events::v1::SubscribeRequest;
use ctrd_api::containerd::services::images::v1 as images;
use ctrd_api::prost_types::Any;
use futures_util::Stream;
use tokio::sync::mpsc;

use crate::{Client, Error};

macro_rules! typed_events {
    ($($(#[$doc:meta])* $variant:ident($ty:ty),)*) => {
        /// An event's message, decoded by its type URL.
        #[derive(Debug, Clone, PartialEq)]
        #[non_exhaustive]
        pub enum TypedEvent {
            $($(#[$doc])* $variant($ty),)*
            /// A message of a type this client does not know (published by a plugin, say).
            Other(Any),
        }

        impl TypedEvent {
            /// Decodes `any` into the message its type URL names.
            pub fn decode(any: &Any) -> Result<TypedEvent, ctrd_api::AnyError> {
                let name = any
                    .type_url
                    .rsplit_once('/')
                    .map_or(any.type_url.as_str(), |(_, name)| name);
                $(
                    if name == <$ty as TypeUrl>::TYPE_URL {
                        return <$ty>::from_any(any).map(TypedEvent::$variant);
                    }
                )*
                Ok(TypedEvent::Other(any.clone()))
            }

            /// The message's type URL.
            pub fn type_url(&self) -> &str {
                match self {
                    $(TypedEvent::$variant(_) => <$ty as TypeUrl>::TYPE_URL,)*
                    TypedEvent::Other(any) => &any.type_url,
                }
            }
        }
    };
}

typed_events! {
    /// A task was created.
    TaskCreate(ev::TaskCreate),
    /// A task started.
    TaskStart(ev::TaskStart),
    /// A task was deleted.
    TaskDelete(ev::TaskDelete),
    /// A task's or exec's process exited.
    TaskExit(ev::TaskExit),
    /// A task ran out of memory.
    TaskOom(ev::TaskOom),
    /// An exec was added.
    TaskExecAdded(ev::TaskExecAdded),
    /// An exec started.
    TaskExecStarted(ev::TaskExecStarted),
    /// A task was paused.
    TaskPaused(ev::TaskPaused),
    /// A task was resumed.
    TaskResumed(ev::TaskResumed),
    /// A task was checkpointed.
    TaskCheckpointed(ev::TaskCheckpointed),
    /// A container was created.
    ContainerCreate(ev::ContainerCreate),
    /// A container was updated.
    ContainerUpdate(ev::ContainerUpdate),
    /// A container was deleted.
    ContainerDelete(ev::ContainerDelete),
    /// A blob was committed.
    ContentCreate(ev::ContentCreate),
    /// A blob was deleted.
    ContentDelete(ev::ContentDelete),
    /// A namespace was created.
    NamespaceCreate(ev::NamespaceCreate),
    /// A namespace was updated.
    NamespaceUpdate(ev::NamespaceUpdate),
    /// A namespace was deleted.
    NamespaceDelete(ev::NamespaceDelete),
    /// A snapshot was prepared.
    SnapshotPrepare(ev::SnapshotPrepare),
    /// A snapshot was committed.
    SnapshotCommit(ev::SnapshotCommit),
    /// A snapshot was removed.
    SnapshotRemove(ev::SnapshotRemove),
    /// An image was created.
    ImageCreate(images::ImageCreate),
    /// An image was updated.
    ImageUpdate(images::ImageUpdate),
    /// An image was deleted.
    ImageDelete(images::ImageDelete),
}

/// One event with where and when it happened.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    /// When it was published.
    pub timestamp: Option<SystemTime>,
    /// The namespace it happened in.
    pub namespace: String,
    /// Its topic, such as `/tasks/exit`.
    pub topic: String,
    /// Its message.
    pub event: TypedEvent,
}

/// A live subscription: a stream of decoded events.
///
/// containerd answers a subscription only with its first event, so the call runs in a task
/// and events arrive through this stream once it is live; drop the stream to unsubscribe.
#[derive(Debug)]
pub struct EventStream {
    receiver: mpsc::Receiver<Result<Envelope, Error>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for EventStream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Stream for EventStream {
    type Item = Result<Envelope, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.receiver.poll_recv(cx)
    }
}

impl Client {
    /// Subscribes to events matching any of `filters` (containerd's syntax, such as
    /// `topic=="/tasks/exit"` or `namespace==default`; none for every event in every
    /// namespace).
    pub fn subscribe(&self, filters: &[&str]) -> EventStream {
        let (sender, receiver) = mpsc::channel(256);
        let client = self.clone();
        let request = SubscribeRequest {
            filters: filters.iter().map(|f| f.to_string()).collect(),
        };
        let task = tokio::spawn(async move {
            let object = format!("events of namespace {}", client.namespace());
            let mut stream = match client.events().subscribe(request).await {
                Ok(stream) => stream.into_inner(),
                Err(status) => {
                    let _ = sender
                        .send(Err(Error::call("events.Subscribe", object, status)))
                        .await;
                    return;
                }
            };
            loop {
                let item = match stream.message().await {
                    Ok(Some(envelope)) => {
                        let decoded = match envelope.event.as_ref() {
                            Some(any) => TypedEvent::decode(any).unwrap_or_else(|e| {
                                tracing::warn!("event on {}: {e}", envelope.topic);
                                TypedEvent::Other(any.clone())
                            }),
                            None => TypedEvent::Other(Any::default()),
                        };
                        Ok(Envelope {
                            timestamp: envelope
                                .timestamp
                                .and_then(|t| SystemTime::try_from(t).ok()),
                            namespace: envelope.namespace,
                            topic: envelope.topic,
                            event: decoded,
                        })
                    }
                    Ok(None) => return,
                    Err(status) => Err(Error::call("events.Subscribe", object.clone(), status)),
                };
                let failed = item.is_err();
                if sender.send(item).await.is_err() || failed {
                    return;
                }
            }
        });
        EventStream { receiver, task }
    }
}
