//! Every `Snapshots` request message: the first byte picks the method, the rest is the message,
//! decoded and checked (keys, labels, filters) as the snapshotter service does.
#![no_main]

use ctrd_snapshots::fuzzing::{METHODS, request};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((selector, payload)) = data.split_first() else {
        return;
    };
    request(METHODS[usize::from(*selector) % METHODS.len()], payload);
});
