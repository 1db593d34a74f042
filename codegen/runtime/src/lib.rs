//! The hand-written runtime of ctrd's generated bindings (`ctrd-api`).
//!
//! `ctrd-codegen` writes code that refers to this crate, the way tonic-build's output refers to
//! tonic: the generated crate holds only generated code, and everything written by hand lives
//! here, under the workspace's lints and tests.
//!
//! - [`TypeUrl`] and [`Event`]: packing messages into `google.protobuf.Any` the way containerd
//!   names them, and the topic of each event. The generated crate implements them for every
//!   message.
//! - [`glue`] (features `ttrpc` and `ttrpc-async`): the `ttrpc` crate carries raw payloads; the
//!   generated servers and clients decode and encode them with prost through this module, and
//!   synchronous handlers receive a [`CallContext`].
//!
//! ```
//! use ctrd_api_rt::TypeUrl;
//!
//! #[derive(Clone, PartialEq, prost::Message)]
//! struct Ping {
//!     #[prost(string, tag = "1")]
//!     text: String,
//! }
//! impl TypeUrl for Ping {
//!     const TYPE_URL: &'static str = "example.Ping";
//! }
//!
//! let any = Ping { text: "hello".into() }.to_any();
//! assert_eq!(any.type_url, "example.Ping");
//! assert_eq!(Ping::from_any(&any)?.text, "hello");
//! # Ok::<(), ctrd_api_rt::AnyError>(())
//! ```

mod any;
#[cfg(any(feature = "ttrpc", feature = "ttrpc-async"))]
pub mod glue;

pub use any::{AnyError, Event, TypeUrl};
#[cfg(any(feature = "ttrpc", feature = "ttrpc-async"))]
pub use glue::CallContext;
