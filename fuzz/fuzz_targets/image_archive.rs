//! An image archive (tar of an OCI layout or of `docker save`), scanned and planned as the
//! client's import does before writing anything. The bytes go to a file first, as an import
//! reads a file.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

fn scratch() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir = if std::path::Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        dir.join(format!("ctrd-fuzz-archive-{}.tar", std::process::id()))
    })
}

fuzz_target!(|data: &[u8]| {
    let path = scratch();
    if std::fs::write(path, data).is_ok() {
        let _ = ctrd_client::fuzzing::archive(path);
    }
    let _ = std::fs::remove_file(path);
});
