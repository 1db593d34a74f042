//! Timestamps as Go's `time.RFC3339Nano` writes them in UTC (what Docker and the CRI log
//! format use): `2006-01-02T15:04:05.999999999Z`, trailing zeros of the fraction dropped, no
//! fraction at all on a whole second.

use std::time::{SystemTime, UNIX_EPOCH};

/// Formats times, caching the date and time of the current second.
#[derive(Debug, Default)]
pub struct TimeFormat {
    cached_second: Option<u64>,
    /// `YYYY-MM-DDTHH:MM:SS` of `cached_second`.
    cached: [u8; 19],
}

impl TimeFormat {
    /// A formatter.
    pub fn new() -> TimeFormat {
        TimeFormat::default()
    }

    /// Appends `time` to `out`. Times before 1970 are written as 1970-01-01T00:00:00Z.
    pub fn append(&mut self, time: SystemTime, out: &mut Vec<u8>) {
        let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
        let secs = since.as_secs();
        if self.cached_second != Some(secs) {
            self.cached = civil(secs);
            self.cached_second = Some(secs);
        }
        out.extend_from_slice(&self.cached);
        let mut nanos = since.subsec_nanos();
        if nanos != 0 {
            let mut digits = 9;
            while nanos.is_multiple_of(10) {
                nanos /= 10;
                digits -= 1;
            }
            out.push(b'.');
            let start = out.len();
            out.resize(start + digits, b'0');
            for i in (0..digits).rev() {
                out[start + i] = b'0' + (nanos % 10) as u8;
                nanos /= 10;
            }
        }
        out.push(b'Z');
    }

    /// `time` as a string.
    pub fn format(&mut self, time: SystemTime) -> String {
        let mut out = Vec::with_capacity(30);
        self.append(time, &mut out);
        String::from_utf8_lossy(&out).into_owned()
    }
}

/// `YYYY-MM-DDTHH:MM:SS` for seconds since the epoch (proleptic Gregorian calendar).
fn civil(secs: u64) -> [u8; 19] {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (hour, minute, second) = (rem / 3600, rem % 3600 / 60, rem % 60);
    // Days to a civil date, counting from 0000-03-01 so that leap days end each year.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    let mut out = *b"0000-00-00T00:00:00";
    let mut put = |at: usize, width: usize, mut v: u64| {
        for i in (0..width).rev() {
            out[at + i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, 4, year);
    put(5, 2, month);
    put(8, 2, day);
    put(11, 2, hour);
    put(14, 2, minute);
    put(17, 2, second);
    out
}

#[cfg(test)]
mod tests {
    use super::TimeFormat;
    use std::time::{Duration, UNIX_EPOCH};

    fn at(secs: u64, nanos: u32) -> String {
        TimeFormat::new().format(UNIX_EPOCH + Duration::new(secs, nanos))
    }

    #[test]
    fn formats_like_go_rfc3339nano_in_utc() {
        assert_eq!(at(0, 0), "1970-01-01T00:00:00Z");
        assert_eq!(
            at(1_136_214_245, 999_999_999),
            "2006-01-02T15:04:05.999999999Z"
        );
        assert_eq!(at(1_136_214_245, 100_000_000), "2006-01-02T15:04:05.1Z");
        assert_eq!(at(1_136_214_245, 120_000), "2006-01-02T15:04:05.00012Z");
        assert_eq!(at(951_782_400, 1), "2000-02-29T00:00:00.000000001Z");
        assert_eq!(at(4_102_444_799, 0), "2099-12-31T23:59:59Z");
        assert_eq!(at(1_709_251_199, 5), "2024-02-29T23:59:59.000000005Z");
    }
}
