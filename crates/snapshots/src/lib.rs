//! containerd snapshotters in Rust.
//!
//! - [`Snapshotter`]: the trait a snapshotter implements, in plain types ([`Info`], [`Kind`],
//!   [`Usage`], [`Mount`], [`Labels`]).
//! - [`MetaStore`]: the metadata every snapshotter needs (keys, ids, parents, kinds, labels,
//!   timestamps, usage and the id map `Cleanup` compares with directories) in an embedded
//!   redb database, one crash-safe transaction per change.
//! - [`Filter`]: containerd's filter syntax for `List`.
//! - [`serve`]: containerd's `Snapshots` gRPC service on an owner-only unix socket until
//!   SIGTERM; containerd loads it as a proxy plugin.
//! - [`mount`]: performs the returned mounts (long overlay lowerdir chains included).
//! - `conformance` (feature `conformance`): the cases every snapshotter must pass, against
//!   your own snapshotter's socket or through containerd.
//!
//! ```no_run
//! use ctrd_snapshots::{Filter, Info, Labels, Listener, Mount, Result, Snapshotter, Usage};
//!
//! /// A snapshotter that refuses everything: each call answers "not found".
//! struct Empty;
//!
//! impl Snapshotter for Empty {
//!     fn stat(&self, key: &str) -> Result<Info> { Err(not_found(key)) }
//!     fn update(&self, info: Info, _: &[String]) -> Result<Info> { Err(not_found(&info.name)) }
//!     fn usage(&self, key: &str) -> Result<Usage> { Err(not_found(key)) }
//!     fn mounts(&self, key: &str) -> Result<Vec<Mount>> { Err(not_found(key)) }
//!     fn prepare(&self, key: &str, _: Option<&str>, _: Labels) -> Result<Vec<Mount>> {
//!         Err(not_found(key))
//!     }
//!     fn view(&self, key: &str, _: Option<&str>, _: Labels) -> Result<Vec<Mount>> {
//!         Err(not_found(key))
//!     }
//!     fn commit(&self, _: &str, key: &str, _: Option<&str>, _: Labels) -> Result<()> {
//!         Err(not_found(key))
//!     }
//!     fn remove(&self, key: &str) -> Result<()> { Err(not_found(key)) }
//!     fn walk(&self, _: &Filter, _: &mut dyn FnMut(Info) -> Result<()>) -> Result<()> { Ok(()) }
//!     fn cleanup(&self) -> Result<()> { Ok(()) }
//! }
//!
//! fn not_found(key: &str) -> ctrd_snapshots::Error {
//!     ctrd_snapshots::Error::NotFound { key: key.into() }
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<()> {
//!     let listener = Listener::bind("/run/empty-snapshotter.sock".as_ref())?;
//!     ctrd_snapshots::serve(listener, Empty).await
//! }
//! ```

#[cfg(feature = "conformance")]
pub mod conformance;
mod error;
mod filter;
#[doc(hidden)]
pub mod fuzzing;
pub mod mount;
mod serve;
mod server;
mod snapshotter;
mod store;
mod types;

pub use error::{Error, Result};
pub use filter::Filter;
pub use serve::{Listener, serve, serve_until};
pub use server::{SnapshotsService, info_to_api};
pub use snapshotter::Snapshotter;
pub use store::{INHERITED_LABEL_PREFIX, MetaStore, RESERVE_BYTES, Snapshot};
pub use types::{Info, Kind, Labels, Mount, Usage};

/// containerd's limit on one label: key and value together, in bytes.
pub const MAX_LABEL_SIZE: usize = 4096;
