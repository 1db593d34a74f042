//! Logging to the `log` FIFO containerd opens in the bundle, in logrus' text format
//! (`time="…" level=info msg="…" key=value`), which is how containerd's own shims write it.

use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Mutex;
use std::time::SystemTime;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::{Context, SubscriberExt};

/// Writes tracing events as logrus lines to a file.
struct Logrus {
    out: Mutex<File>,
    max: Level,
}

/// Installs the global subscriber: the bundle's `log` FIFO if containerd is reading it, at
/// debug level with `debug`, info otherwise. Returns whether the FIFO was opened.
pub fn init(bundle: &Path, debug: bool) -> bool {
    let max = if debug { Level::DEBUG } else { Level::INFO };
    // Non-blocking open: with no reader (containerd gone) it fails instead of hanging.
    let file = OpenOptions::new()
        .write(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(bundle.join("log"));
    let Ok(file) = file else {
        return false;
    };
    // Writes must block (rather than drop lines) once open.
    let fd = std::os::fd::AsFd::as_fd(&file);
    if let Ok(flags) = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFL) {
        let flags = nix::fcntl::OFlag::from_bits_truncate(flags) & !nix::fcntl::OFlag::O_NONBLOCK;
        let _ = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_SETFL(flags));
    }
    let layer = Logrus {
        out: Mutex::new(file),
        max,
    };
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer)).is_ok()
}

impl<S: Subscriber> Layer<S> for Logrus {
    fn enabled(&self, metadata: &tracing::Metadata<'_>, _ctx: Context<'_, S>) -> bool {
        *metadata.level() <= self.max
    }

    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let line = format_line(event.metadata().level(), SystemTime::now(), |v| {
            event.record(v)
        });
        if let Ok(mut out) = self.out.lock() {
            let _ = out.write_all(line.as_bytes());
        }
    }
}

/// One logrus line for an event whose fields `record` visits.
fn format_line(level: &Level, at: SystemTime, record: impl FnOnce(&mut Fields)) -> String {
    let mut fields = Fields::default();
    record(&mut fields);
    let level = match *level {
        Level::ERROR => "error",
        Level::WARN => "warning",
        Level::INFO => "info",
        Level::DEBUG => "debug",
        Level::TRACE => "trace",
    };
    let mut line = format!(
        "time=\"{}\" level={level} msg={}",
        rfc3339(at),
        quote(&fields.message)
    );
    for (k, v) in &fields.rest {
        let _ = write!(line, " {k}={}", quote(v));
    }
    line.push('\n');
    line
}

#[derive(Default)]
struct Fields {
    message: String,
    rest: Vec<(&'static str, String)>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_owned();
        } else {
            self.rest.push((field.name(), value.to_owned()));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.record_str(field, &format!("{value:?}"));
    }
}

/// Quotes a value the way logrus does when it has spaces or quotes.
fn quote(value: &str) -> String {
    if !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._/@^+:".contains(c))
    {
        value.to_owned()
    } else {
        format!("{value:?}")
    }
}

/// UTC time as RFC 3339 with nanoseconds, without a date library.
fn rfc3339(at: SystemTime) -> String {
    let d = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_nanos()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn lines_look_like_logrus() {
        let at = SystemTime::UNIX_EPOCH + Duration::new(1_700_000_000, 5);
        let line = format_line(&Level::WARN, at, |f| {
            f.message = "task exited".into();
            f.rest.push(("id", "c1".into()));
            f.rest.push(("error", "no such file".into()));
        });
        assert_eq!(
            line,
            "time=\"2023-11-14T22:13:20.000000005Z\" level=warning msg=\"task exited\" id=c1 error=\"no such file\"\n"
        );
    }
}
