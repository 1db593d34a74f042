//! The `delete` action.

use std::io::Write;

use prost::Message;

use crate::{DeleteContext, Error, Flags, Shim};

pub(crate) fn run<S: Shim>(flags: &Flags) -> Result<(), Error> {
    let bundle = match &flags.bundle {
        Some(b) => b.clone(),
        None => std::env::current_dir().map_err(|e| Error::io("reading the working folder", e))?,
    };
    let ctx = DeleteContext {
        namespace: flags.namespace.clone(),
        id: flags.id.clone(),
        bundle,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("starting the runtime", e))?;
    let response = runtime.block_on(S::delete(ctx))?;
    std::io::stdout()
        .write_all(&response.encode_to_vec())
        .map_err(|e| Error::io("writing the delete response", e))
}
