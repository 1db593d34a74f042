//! Bytes as they arrive on a shim's socket: ttrpc frames read as the ttrpc server reads them
//! (header, length check, payload), each request's envelope decoded, and its message handed to
//! the task service's decoding and checks.
#![no_main]

use std::sync::OnceLock;

use ctrd_api::ttrpc::proto::{Codec, GenMessage, MESSAGE_TYPE_REQUEST, Request};
use libfuzzer_sys::fuzz_target;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a current-thread runtime")
    })
}

fuzz_target!(|data: &[u8]| {
    runtime().block_on(async {
        let mut reader = data;
        // A connection carries frames back to back; the server reads until the peer is gone.
        while let Ok(frame) = GenMessage::read_from(&mut reader).await {
            if frame.check().is_err() || frame.header.type_ != MESSAGE_TYPE_REQUEST {
                continue;
            }
            if let Ok(request) = <Request as Codec>::decode(&frame.payload)
                && request.service.starts_with("containerd.task.v")
            {
                ctrd_runc_shim::fuzzing::task_request(&request.method, &request.payload);
            }
        }
    });
});
