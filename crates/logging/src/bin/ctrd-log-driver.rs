//! `ctrd-log-driver`: a containerd log driver writing Docker json-file or CRI logs.
//!
//! ```text
//! ctr run --log-uri 'binary:///usr/local/bin/ctrd-log-driver?sink=json-file&path=/var/log/c1.log&max-size=10m&max-file=5' ...
//! ```
//!
//! Options (URI query): `sink` (`json-file`, `cri`, `journald`, `syslog`); for the file sinks
//! `path`, `max-size`, `max-file`, `compress` (and `tag` for json-file); for journald
//! `journald-socket`, `name`, `tag`; for syslog `syslog-address`, `syslog-facility`,
//! `syslog-format`, `tag`; for all `mode` (`blocking`, `non-blocking`), `max-buffer-size`,
//! `drain-timeout`, `ready` (`byte`, `close`). Errors go to stderr and the exit status is 1; under
//! `binary-v2://` a driver that fails before it is ready fails the container's start.
//!
//! Exit status: 0 when every record read was delivered, even if the sink failed on the way
//! and recovered (a full disk: what was buffered is written once space returns; stderr says
//! how often it failed); 1 when output was lost, with the count of lost records (and bytes)
//! and the first failure on stderr, or when the driver could not start. Records that
//! `mode=non-blocking` drops when its buffer is full are reported on stderr but do not fail
//! the driver: that mode asks for them to be dropped rather than make the container wait.

use std::process::ExitCode;

use ctrd_logging::sinks::{self, Labels};
use ctrd_logging::{Error, Options, RunOptions, Startup};

fn main() -> ExitCode {
    let mut startup = match Startup::from_env() {
        Ok(startup) => startup,
        Err(e) => return fail(&e),
    };
    // `startup` (and with it fd 5) lives until the error is written, so a shim that sees fd 5
    // close finds the reason on the driver's stderr.
    match drive(&mut startup) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

fn fail(e: &Error) -> ExitCode {
    eprintln!("ctrd-log-driver: {e}");
    ExitCode::FAILURE
}

fn drive(startup: &mut Startup) -> Result<(), Error> {
    let mut options = Options::from_args(std::env::args_os().skip(1))?;
    let run_options = RunOptions::from_options(&mut options)?;
    let labels = Labels {
        id: startup.id.clone(),
        namespace: startup.namespace.clone(),
    };
    let sink = sinks::open(&mut options, &labels)?;
    options.finish()?;
    startup.ready(run_options.ready)?;
    let (stdout, stderr) = startup.take_streams()?;
    let summary = ctrd_logging::run(stdout, stderr, sink, &run_options)?;
    if summary.drain_timed_out {
        eprintln!(
            "ctrd-log-driver: after SIGTERM a pipe stayed open past drain-timeout; \
             what the container writes from now on is not logged"
        );
    }
    if summary.dropped.records > 0 {
        eprintln!(
            "ctrd-log-driver: non-blocking mode dropped {} records ({} bytes)",
            summary.dropped.records, summary.dropped.bytes
        );
    }
    if summary.lost() {
        return Err(Error::OutputLost {
            refused: summary.refused,
            records: summary.records,
            refused_bytes: summary.refused_bytes,
            unflushed: summary.unflushed,
            failures: summary.sink_errors,
            first: summary.first_sink_error.unwrap_or_default(),
        });
    }
    if let Some(first) = summary.first_sink_error {
        eprintln!(
            "ctrd-log-driver: the sink failed {} times and recovered: every record was written; \
             the first failure: {first}",
            summary.sink_errors
        );
    }
    Ok(())
}
