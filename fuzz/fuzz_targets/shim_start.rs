//! What a shim's `start` reads: standard input (runtime options `Any` from containerd 1.6 to
//! 2.2, `BootstrapParams` from 2.3), and the command line, here as NUL-separated arguments.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ctrd_shim::fuzzing::start_input(data);
    if let Ok(text) = std::str::from_utf8(data) {
        ctrd_shim::fuzzing::flags(text.split('\0').map(str::to_owned).collect());
    }
});
