//! Parsing `.proto` files into descriptors, without protoc, and reading pinned descriptor sets.
//!
//! The pipeline has two halves. [`compile_pinned`] turns fetched upstream `.proto` files into an
//! encoded descriptor set that is checked in: schema only, no source info, the same bytes on
//! every machine. [`resolve`] later builds the full set the generator runs on from those
//! checked-in sets and the protos we keep as source, with no upstream file on disk.

use std::path::PathBuf;

use prost_types::FileDescriptorSet;
use protox::file::{
    ChainFileResolver, DescriptorSetFileResolver, GoogleFileResolver, IncludeFileResolver,
};

use crate::Error;

/// Compiles `files` (import paths, resolved against `includes`) into an encoded descriptor set
/// holding exactly those files, not what they import.
///
/// Source info is left out on purpose: without it no upstream comment can reach the output, and
/// the bytes depend on the schema alone.
pub fn compile_pinned(includes: &[PathBuf], files: &[String]) -> Result<Vec<u8>, Error> {
    let mut compiler = protox::Compiler::new(includes)?;
    compiler.include_imports(false).include_source_info(false);
    compiler.open_files(files)?;
    Ok(compiler.encode_file_descriptor_set())
}

/// Names of the files an encoded descriptor set holds, in its order.
pub fn file_names(set: &[u8]) -> Result<Vec<String>, Error> {
    let set: FileDescriptorSet = prost::Message::decode(set).map_err(Error::Descriptors)?;
    Ok(set.file.into_iter().map(|f| f.name().to_owned()).collect())
}

/// Builds the full descriptor set to generate from: every file of the pinned `sets`, the
/// `files` found under `includes`, and everything they import (well-known types included).
///
/// Imports resolve against the pinned sets first, then `includes`, then protox's bundled
/// well-known types.
pub fn resolve(
    sets: &[Vec<u8>],
    includes: &[PathBuf],
    files: &[String],
) -> Result<FileDescriptorSet, Error> {
    let mut resolver = ChainFileResolver::new();
    let mut names = Vec::new();
    for set in sets {
        names.extend(file_names(set)?);
        resolver
            .add(DescriptorSetFileResolver::decode(set.as_slice()).map_err(Error::Descriptors)?);
    }
    for include in includes {
        resolver.add(IncludeFileResolver::new(include.clone()));
    }
    resolver.add(GoogleFileResolver::new());
    let mut compiler = protox::Compiler::with_file_resolver(resolver);
    compiler.include_imports(true).include_source_info(false);
    compiler.open_files(names.iter().chain(files))?;
    Ok(compiler.file_descriptor_set())
}
