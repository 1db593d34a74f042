//! Packing messages into `google.protobuf.Any` the way containerd does, and event topics.

use prost::Message;
use prost_types::Any;

/// A message with a known type URL.
///
/// containerd names types in `Any` by their fully qualified proto name with no prefix
/// (`containerd.events.TaskCreate`), and accepts a prefix ending in `/` when it reads them.
pub trait TypeUrl: Message + Default + Sized {
    /// The type URL containerd writes for this message.
    const TYPE_URL: &'static str;

    /// Packs the message into an `Any`.
    fn to_any(&self) -> Any {
        Any {
            type_url: Self::TYPE_URL.to_owned(),
            value: self.encode_to_vec(),
        }
    }

    /// Unpacks the message from an `Any`, checking its type URL.
    fn from_any(any: &Any) -> Result<Self, AnyError> {
        let name = any
            .type_url
            .rsplit_once('/')
            .map_or(any.type_url.as_str(), |(_, name)| name);
        if name != Self::TYPE_URL {
            return Err(AnyError::TypeMismatch {
                expected: Self::TYPE_URL,
                found: any.type_url.clone(),
            });
        }
        Self::decode(any.value.as_slice()).map_err(|error| AnyError::Decode {
            type_url: Self::TYPE_URL,
            error,
        })
    }
}

/// An event message containerd publishes, with its topic.
pub trait Event: TypeUrl {
    /// The topic the event is published under, such as `/tasks/create`.
    const TOPIC: &'static str;
}

/// Why an `Any` could not be unpacked.
#[derive(Debug, thiserror::Error)]
pub enum AnyError {
    /// The `Any` holds another type.
    #[error("expected an Any holding {expected}, found {found}")]
    TypeMismatch {
        /// The type URL that was asked for.
        expected: &'static str,
        /// The type URL the `Any` carries.
        found: String,
    },
    /// The payload is not a valid encoding of the type.
    #[error("malformed {type_url} in Any: {error}")]
    Decode {
        /// The type URL that was asked for.
        type_url: &'static str,
        /// The decoder's error.
        error: prost::DecodeError,
    },
}
