//! containerd log drivers in Rust.
//!
//! containerd hands a container's output to a log driver named by a `binary://` (or, from
//! containerd 2.2, `binary-v2://`) URI: the shim starts the binary with the container's
//! stdout on fd 3, stderr on fd 4 and a readiness pipe on fd 5. This crate is the driver side:
//!
//! - [`Startup`] takes the descriptors and the environment and answers on fd 5 in the way
//!   both schemes accept ([`Ready`]);
//! - [`run`] reads both pipes, splits them into [`Record`]s with a [`Splitter`] (no byte lost
//!   or reordered; a last line without newline delivered at the end; lines over 16 KiB cut
//!   into partial records), feeds a [`Driver`], blocking or through a bounded ring that drops
//!   the oldest records ([`Mode`]), and on SIGTERM drains both pipes, flushes and returns;
//! - [`Options`] reads the URI query into typed values with errors that name the option;
//! - [`sinks`] holds the json-file (Docker's bytes) and CRI sinks with rotation
//!   ([`RotatingFile`]), and [`reader`] reads their files back, following rotation.
//!
//! The `ctrd-log-driver` binary is all of this behind
//! `binary:///usr/local/bin/ctrd-log-driver?sink=json-file&path=/var/log/c1.log&max-size=10m`.
//!
//! **Exit status.** A full disk (or a gone journal) never blocks the container and never tears
//! a line: a record the sink cannot take is dropped whole, and what the file sinks buffered
//! (256 KiB) waits for space. So the driver exits **0** when every record it read was
//! delivered, even if the sink failed on the way and recovered (it then says on stderr how
//! often it failed), and **1** only when output was lost, naming how many records and bytes
//! ([`Error::OutputLost`], from [`Summary::lost`]), or when it could not start. Records that
//! `mode=non-blocking` drops by design are reported on stderr without failing the driver.
//!
//! A driver of your own:
//!
//! ```no_run
//! use ctrd_logging::{Driver, Error, Options, Record, RunOptions, Startup};
//!
//! struct Count(u64);
//!
//! impl Driver for Count {
//!     fn write(&mut self, record: &Record<'_>) -> Result<(), Error> {
//!         self.0 += record.bytes.len() as u64;
//!         Ok(())
//!     }
//! }
//!
//! fn main() -> Result<(), Error> {
//!     let mut startup = Startup::from_env()?;
//!     let mut options = Options::from_args(std::env::args_os().skip(1))?;
//!     let run_options = RunOptions::from_options(&mut options)?;
//!     options.finish()?;
//!     startup.ready(run_options.ready)?;
//!     let (stdout, stderr) = startup.take_streams()?;
//!     let summary = ctrd_logging::run(stdout, stderr, Count(0), &run_options)?;
//!     eprintln!("{} records", summary.records);
//!     Ok(())
//! }
//! ```

mod driver;
mod error;
pub mod options;
pub mod reader;
mod record;
mod ring;
pub mod rotate;
mod run;
pub mod sinks;
pub mod split;
mod startup;
pub mod time;

pub use driver::Driver;
pub use error::Error;
pub use options::Options;
pub use record::{OwnedRecord, Record, Stream};
pub use ring::{Dropped, Ring};
pub use rotate::{RotatingFile, Rotation};
pub use run::{DEFAULT_DRAIN_TIMEOUT, DEFAULT_MAX_BUFFER, Mode, RunOptions, Summary, run};
pub use split::{MAX_RECORD, Splitter};
pub use startup::{READY_FD, Ready, STDERR_FD, STDOUT_FD, Startup};
