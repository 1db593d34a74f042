//! Generator of containerd's protocol bindings.
//!
//! From `.proto` files (parsed by protox, so no protoc is needed) it emits a complete crate:
//!
//! - prost messages for every package, each with a one-line doc naming its proto and an impl of
//!   `TypeUrl` (and `Event`, with its topic, for event messages);
//! - tonic clients and servers for the gRPC services, behind the crate feature `grpc`;
//! - ttrpc servers and clients for the shim services, synchronous (`ttrpc`) and asynchronous
//!   (`ttrpc-async`), as glue over the `ttrpc` crate's raw payloads;
//! - for every service, hidden metadata that the `ctrd_macros::service` scaffolding macro reads.
//!
//! Generation runs offline, from descriptor sets: [`compile_pinned`] compiles fetched upstream
//! `.proto` files once into a descriptor set that is checked in, and [`generate`] works from
//! those sets plus the protos kept as source. Output is deterministic and formatted with one
//! formatter, so it can be checked in and compared byte for byte.
//!
//! ```no_run
//! // Once, with the upstream files at hand: compile them into a pinned descriptor set.
//! let pinned = ctrd_codegen::compile_pinned(
//!     &["proto/upstream".into(), "proto/extra".into()],
//!     &["github.com/containerd/containerd/api/services/version/v1/version.proto".into()],
//! )?;
//! // Any time later, offline: generate the crate from it.
//! let input = ctrd_codegen::Input {
//!     descriptor_sets: vec![pinned],
//!     includes: vec!["proto/extra".into()],
//!     files: vec![],
//!     command: "cargo xtask regen".into(),
//! };
//! for file in ctrd_codegen::generate(&input)? {
//!     println!("{}: {} bytes", file.path.display(), file.contents.len());
//! }
//! # Ok::<(), ctrd_codegen::Error>(())
//! ```

mod descriptor;
mod error;
mod format;
mod grpc;
mod layout;
mod messages;
mod names;
mod registry;
mod scaffold;
mod services;
pub mod spec;
mod ttrpc;

use std::path::PathBuf;

pub use error::Error;

pub use descriptor::{compile_pinned, file_names};

/// What to generate from.
#[derive(Debug, Clone)]
pub struct Input {
    /// Encoded descriptor sets of pinned upstream files (see [`compile_pinned`]); every file in
    /// them is generated.
    pub descriptor_sets: Vec<Vec<u8>>,
    /// Folders of `.proto` files kept as source, which imports also resolve against.
    pub includes: Vec<PathBuf>,
    /// Import paths of source files (under `includes`) to generate too; their imports come
    /// along.
    pub files: Vec<String>,
    /// The command that regenerates the output, named in every file's header.
    pub command: String,
}

/// One file of the generated crate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputFile {
    /// Path relative to the crate's folder.
    pub path: PathBuf,
    /// Full contents.
    pub contents: String,
}

/// Generates the bindings crate.
pub fn generate(input: &Input) -> Result<Vec<OutputFile>, Error> {
    let fds = descriptor::resolve(&input.descriptor_sets, &input.includes, &input.files)?;
    let packages = messages::generate(&fds)?;
    let type_urls = registry::generate(&fds);
    layout::files(&input.command, &packages, &type_urls)
}
