//! The runc shim's runtime options, an encoded `Any` (`containerd.runc.v1.Options` or another
//! type), as `start` and `Create` receive them.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ctrd_runc_shim::fuzzing::options_any(data));
