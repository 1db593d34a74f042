//! What a registry answers for a manifest or index (and an image config), read as the client's
//! pull reads it. The first line is the image reference, the rest the document.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (reference, document) = match data.iter().position(|&b| b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (&b""[..], data),
    };
    let reference = String::from_utf8_lossy(reference);
    ctrd_client::fuzzing::registry(document, &reference);
});
