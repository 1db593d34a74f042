//! The generator's error type.

use std::path::PathBuf;

/// Why generation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The `.proto` files did not compile.
    #[error("compiling protos failed: {0}")]
    Protos(protox::Error),
    /// A pinned descriptor set is not a valid encoding of one.
    #[error("a pinned descriptor set does not decode: {0}")]
    Descriptors(prost::DecodeError),
    /// prost could not generate code for them.
    #[error("generating messages failed: {0}")]
    Prost(std::io::Error),
    /// Generated Rust did not parse, which is a generator bug.
    #[error("generated code for {file} does not parse: {error}")]
    Parse {
        /// The output file being formatted.
        file: PathBuf,
        /// The parser's error.
        error: syn::Error,
    },
    /// A feature of the protos the generator does not support.
    #[error("unsupported: {0}")]
    Unsupported(String),
}

impl From<protox::Error> for Error {
    fn from(e: protox::Error) -> Error {
        Error::Protos(e)
    }
}
