//! Parsing `.proto` files into descriptors, without protoc.

use std::path::PathBuf;

use prost_types::FileDescriptorSet;

use crate::Error;

/// Compiles `files` (import paths, resolved against `includes`) and everything they import.
///
/// Source info is left out on purpose: without it no upstream comment can reach the output.
pub fn compile(includes: &[PathBuf], files: &[String]) -> Result<FileDescriptorSet, Error> {
    let mut compiler = protox::Compiler::new(includes)?;
    compiler.include_imports(true).include_source_info(false);
    compiler.open_files(files)?;
    Ok(compiler.file_descriptor_set())
}
