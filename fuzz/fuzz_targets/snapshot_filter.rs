//! containerd's filter syntax as `List` receives it: one filter string a line.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let filters: Vec<&str> = text.split('\n').collect();
        ctrd_snapshots::fuzzing::filter_strings(&filters);
    }
});
