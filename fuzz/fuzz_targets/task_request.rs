//! Every task service request message: the first byte picks the method, the rest is the
//! message, decoded and checked as the runc shim does before acting.
#![no_main]

use ctrd_runc_shim::fuzzing::{METHODS, task_request};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((selector, payload)) = data.split_first() else {
        return;
    };
    let method = METHODS[usize::from(*selector) % METHODS.len()];
    task_request(method, payload);
});
