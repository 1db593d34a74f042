//! A log driver URI as a container's stdout: checked by the runc shim, turned into the
//! driver's command line, and that command line read by `ctrd-log-driver`'s options (every
//! sink's, without opening anything).
#![no_main]

use ctrd_logging::sinks::{FileOptions, journald::JournaldOptions, syslog::SyslogOptions};
use ctrd_logging::{Options, RunOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(uri) = std::str::from_utf8(data) else {
        return;
    };
    let _ = ctrd_runc_shim::fuzzing::stdio_uri(uri);
    let driver = uri
        .strip_prefix("binary://")
        .or_else(|| uri.strip_prefix("binary-v2://"))
        .unwrap_or(uri);
    let (_, args) = ctrd_runc_shim::fuzzing::driver_command(driver);
    let Ok(mut options) = Options::from_args(args) else {
        return;
    };
    if RunOptions::from_options(&mut options).is_err() {
        return;
    }
    let sink = options.choice(
        "sink",
        &[
            ("json-file", "json-file"),
            ("cri", "cri"),
            ("journald", "journald"),
            ("syslog", "syslog"),
        ],
    );
    let read = match sink {
        Ok(Some("journald")) => JournaldOptions::from_options(&mut options).map(drop),
        Ok(Some("syslog")) => SyslogOptions::from_options(&mut options).map(drop),
        Ok(_) => {
            let _ = options.string("tag");
            FileOptions::from_options(&mut options).map(drop)
        }
        Err(e) => Err(e),
    };
    if read.is_ok() {
        let _ = options.finish();
    }
});
