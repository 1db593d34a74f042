//! What runc writes to its log (JSON or logrus text lines) and to standard error, from which
//! the wrapper reads the reason a command failed.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ctrd_runc::fuzzing::log(data));
