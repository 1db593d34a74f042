//! What runc prints on standard output: `state`, `list`, `ps`, `events` (and `--stats`),
//! `features` JSON and `--version` text.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ctrd_runc::fuzzing::output(data));
