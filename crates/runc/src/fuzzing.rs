//! Entry points for the fuzz targets under `fuzz/` in the repository: what runc prints (its
//! JSON answers, `events` lines, `--version` text) and what it logs (JSON and logrus text
//! lines), through the same parsers the commands use. Not part of the API.

use crate::plan;
use crate::types::{Event, Features, State, Version};

/// Every parse of runc's standard output, on the same bytes.
pub fn output(stdout: &[u8]) {
    let _ = plan::parse_json::<State>("state", stdout);
    let _ = plan::parse_json::<Option<Vec<State>>>("list", stdout);
    let _ = plan::parse_json::<Option<Vec<i32>>>("ps", stdout);
    let _ = plan::parse_json::<Event>("events --stats", stdout);
    let _ = plan::parse_json::<Features>("features", stdout);
    let text = String::from_utf8_lossy(stdout);
    let _ = Version::parse(&text);
    for line in text.lines() {
        if let Ok(event) = crate::events::parse_line("events", line.trim()) {
            let _ = event.is_oom();
        }
    }
}

/// The error message read back from runc's log (`--log-format json` and `text`) and from its
/// standard error.
pub fn log(log: &[u8]) {
    let text = String::from_utf8_lossy(log);
    for line in text.lines().rev() {
        let _ = plan::json_error(line);
        let _ = plan::text_error(line);
    }
}
