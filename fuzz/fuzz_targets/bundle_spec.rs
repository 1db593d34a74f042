//! A bundle's `config.json` (an OCI runtime spec), read by the shim framework's `start`
//! (annotations) and by the runc shim (pid namespace; runc's spec type).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ctrd_shim::fuzzing::spec_annotations(data);
    ctrd_runc_shim::fuzzing::bundle_spec(data);
});
