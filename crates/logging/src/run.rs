//! The driver's main loop: read both streams, split them into records, feed the sink, and
//! stop cleanly on end of file or SIGTERM.

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant, SystemTime};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use crate::options::Options;
use crate::record::{OwnedRecord, Record, Stream};
use crate::ring::{Dropped, Ring};
use crate::split::Splitter;
use crate::startup::Ready;
use crate::{Driver, Error};

/// How long a driver keeps draining its pipes after SIGTERM by default: containerd kills it
/// 12 s after sending SIGTERM, so this leaves time to flush.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Docker's default `max-buffer-size` for non-blocking mode (1 MB).
pub const DEFAULT_MAX_BUFFER: usize = 1_000_000;

/// Bytes read from a pipe at once.
const READ_SIZE: usize = 256 * 1024;

/// The pipe buffer asked for on the container's pipes (best effort; the kernel caps it at
/// /proc/sys/fs/pipe-max-size): fewer wake-ups for the driver, fewer waits for the container.
const PIPE_SIZE: i32 = 1 << 20;

/// What happens when the sink is slower than the container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The container waits for the sink (nothing is lost). Docker's `mode=blocking`.
    Blocking,
    /// The container never waits: records queue in a ring of at most `max_buffer` bytes, and
    /// when it is full the oldest records are dropped and counted. Docker's
    /// `mode=non-blocking` with `max-buffer-size`.
    NonBlocking {
        /// The ring's size in bytes.
        max_buffer: usize,
    },
}

/// Options of the loop itself, common to every sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunOptions {
    /// Blocking or non-blocking.
    pub mode: Mode,
    /// How long to keep reading after SIGTERM before flushing and exiting.
    pub drain_timeout: Duration,
    /// How to answer on the readiness pipe.
    pub ready: Ready,
}

impl Default for RunOptions {
    fn default() -> RunOptions {
        RunOptions {
            mode: Mode::Blocking,
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
            ready: Ready::Byte,
        }
    }
}

impl RunOptions {
    /// Reads `mode` (`blocking`, `non-blocking`), `max-buffer-size` (a size, non-blocking
    /// only), `drain-timeout` (a duration) and `ready` (`byte`, `close`).
    pub fn from_options(options: &mut Options) -> Result<RunOptions, Error> {
        let blocking = options
            .choice("mode", &[("blocking", true), ("non-blocking", false)])?
            .unwrap_or(true);
        let max_buffer = options.size("max-buffer-size")?;
        let mode = match (blocking, max_buffer) {
            (true, Some(_)) => {
                return Err(Error::Conflict(
                    "option max-buffer-size needs mode=non-blocking".into(),
                ));
            }
            (true, None) => Mode::Blocking,
            (false, size) => Mode::NonBlocking {
                max_buffer: size.map_or(DEFAULT_MAX_BUFFER, |s| {
                    usize::try_from(s).unwrap_or(usize::MAX)
                }),
            },
        };
        Ok(RunOptions {
            mode,
            drain_timeout: options
                .duration("drain-timeout")?
                .unwrap_or(DEFAULT_DRAIN_TIMEOUT),
            ready: options
                .choice("ready", &[("byte", Ready::Byte), ("close", Ready::Close)])?
                .unwrap_or_default(),
        })
    }
}

/// What a run did.
///
/// [`lost`](Summary::lost) says whether output was lost: records the sink refused, or what it
/// still held when its last flush failed. Failures the sink recovered from (a flush that
/// failed while the disk was full, its buffer written by a later one) lose nothing; they are
/// counted in [`sink_errors`](Summary::sink_errors) only.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Records handed to the sink (in non-blocking mode, those the ring did not drop).
    pub records: u64,
    /// Bytes of those records.
    pub bytes: u64,
    /// Records dropped by the non-blocking ring (by design: that mode never makes the
    /// container wait).
    pub dropped: Dropped,
    /// Records the sink refused: lost.
    pub refused: u64,
    /// Bytes of those records.
    pub refused_bytes: u64,
    /// The last flush failed: what the sink held then was not written (the error).
    pub unflushed: Option<String>,
    /// Writes and flushes the sink failed, whether or not it recovered.
    pub sink_errors: u64,
    /// The first of those failures.
    pub first_sink_error: Option<String>,
    /// SIGTERM (or SIGINT) arrived.
    pub terminated: bool,
    /// The drain after SIGTERM ran out of time with a pipe still open.
    pub drain_timed_out: bool,
}

impl Summary {
    /// Whether the sink lost output: it refused records, or its last flush failed.
    pub fn lost(&self) -> bool {
        self.refused > 0 || self.unflushed.is_some()
    }

    /// Counts a failure, and returns whether there was one.
    fn failed(&mut self, result: &Result<(), Error>) -> bool {
        let Err(e) = result else { return false };
        self.sink_errors += 1;
        if self.first_sink_error.is_none() {
            self.first_sink_error = Some(e.to_string());
        }
        true
    }

    /// One record handed to the sink, and what it answered.
    fn wrote(&mut self, bytes: usize, result: Result<(), Error>) {
        if self.failed(&result) {
            self.refused += 1;
            self.refused_bytes += bytes as u64;
        }
    }

    /// A flush; `last` when nothing will follow it.
    fn flushed(&mut self, result: Result<(), Error>, last: bool) {
        if self.failed(&result) && last {
            self.unflushed = result.err().map(|e| e.to_string());
        }
    }
}

/// Reads the container's `stdout` and `stderr` until both reach end of file and feeds `driver`.
///
/// SIGTERM and SIGINT are blocked in the calling thread and taken through a signalfd, so
/// call this from the main thread before starting others (threads started later inherit the
/// mask). On SIGTERM the loop keeps reading until both pipes end (the container has exited)
/// or `drain_timeout` passes, then delivers what it holds, flushes and returns. A sink error
/// does not stop the loop (stopping would block the container); errors are counted in the
/// [`Summary`].
pub fn run<D: Driver + Send>(
    stdout: OwnedFd,
    stderr: OwnedFd,
    mut driver: D,
    options: &RunOptions,
) -> Result<Summary, Error> {
    let mut signals = SigSet::empty();
    signals.add(Signal::SIGTERM);
    signals.add(Signal::SIGINT);
    signals
        .thread_block()
        .map_err(|e| Error::sys("blocking SIGTERM", e))?;
    let signal_fd = SignalFd::with_flags(&signals, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .map_err(|e| Error::sys("signalfd", e))?;
    for fd in [&stdout, &stderr] {
        let _ = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_SETPIPE_SZ(PIPE_SIZE));
    }
    let mut pump = Pump {
        streams: [
            Some((File::from(stdout), Splitter::new(Stream::Stdout))),
            Some((File::from(stderr), Splitter::new(Stream::Stderr))),
        ],
        signal_fd,
        drain_timeout: options.drain_timeout,
        terminated: false,
        drain_timed_out: false,
    };
    let mut summary = match options.mode {
        Mode::Blocking => {
            let mut direct = Direct {
                driver: &mut driver,
                summary: Summary::default(),
            };
            pump.run(&mut direct)?;
            let result = direct.driver.flush();
            direct.summary.flushed(result, true);
            direct.summary
        }
        Mode::NonBlocking { max_buffer } => {
            let ring = Ring::new(max_buffer);
            let (read, written) = std::thread::scope(|scope| {
                let writer = scope.spawn(|| drain_ring(&ring, &mut driver));
                let read = pump.run(&mut Queue(&ring));
                ring.close();
                (read, writer.join())
            });
            read?;
            let mut summary = written.unwrap_or_else(|_| Summary {
                first_sink_error: Some("the sink panicked".into()),
                unflushed: Some("the sink panicked".into()),
                sink_errors: 1,
                ..Summary::default()
            });
            summary.dropped = ring.dropped();
            summary
        }
    };
    summary.terminated = pump.terminated;
    summary.drain_timed_out = pump.drain_timed_out;
    Ok(summary)
}

/// Where the pump's records go.
trait Consumer {
    fn record(&mut self, record: Record<'_>);
    /// The pipes have nothing more to read right now.
    fn idle(&mut self);
}

/// Blocking mode: straight into the sink.
struct Direct<'d, D> {
    driver: &'d mut D,
    summary: Summary,
}

impl<D: Driver> Consumer for Direct<'_, D> {
    fn record(&mut self, record: Record<'_>) {
        self.summary.records += 1;
        self.summary.bytes += record.bytes.len() as u64;
        let result = self.driver.write(&record);
        self.summary.wrote(record.bytes.len(), result);
    }

    fn idle(&mut self) {
        let result = self.driver.flush();
        self.summary.flushed(result, false);
    }
}

/// Non-blocking mode: into the ring.
struct Queue<'r>(&'r Ring);

impl Consumer for Queue<'_> {
    fn record(&mut self, record: Record<'_>) {
        self.0.push(OwnedRecord::from(record));
    }

    fn idle(&mut self) {}
}

/// The non-blocking mode's writer: empties the ring into the sink, flushing when it runs dry.
fn drain_ring<D: Driver>(ring: &Ring, driver: &mut D) -> Summary {
    fn write<D: Driver>(s: &mut Summary, driver: &mut D, record: OwnedRecord) {
        s.records += 1;
        s.bytes += record.bytes.len() as u64;
        let result = driver.write(&record.as_record());
        s.wrote(record.bytes.len(), result);
    }
    let mut s = Summary::default();
    while let Some(record) = ring.pop() {
        write(&mut s, driver, record);
        while let Some(record) = ring.try_pop() {
            write(&mut s, driver, record);
        }
        let result = driver.flush();
        s.flushed(result, false);
    }
    let result = driver.flush();
    s.flushed(result, true);
    s
}

struct Pump {
    streams: [Option<(File, Splitter)>; 2],
    signal_fd: SignalFd,
    drain_timeout: Duration,
    terminated: bool,
    drain_timed_out: bool,
}

impl Pump {
    fn run(&mut self, consumer: &mut impl Consumer) -> Result<(), Error> {
        let mut buf = vec![0u8; READ_SIZE];
        let mut deadline: Option<Instant> = None;
        while self.streams.iter().any(Option::is_some) {
            let timeout = match deadline {
                None => PollTimeout::NONE,
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now()).as_millis();
                    PollTimeout::try_from(left.min(i32::MAX as u128) as i32)
                        .unwrap_or(PollTimeout::ZERO)
                }
            };
            let mut ready = [false; 3];
            {
                let mut fds = Vec::with_capacity(3);
                let mut which = Vec::with_capacity(3);
                for (i, s) in self.streams.iter().enumerate() {
                    if let Some((file, _)) = s {
                        fds.push(PollFd::new(file.as_fd(), PollFlags::POLLIN));
                        which.push(i);
                    }
                }
                if deadline.is_none() {
                    fds.push(PollFd::new(self.signal_fd.as_fd(), PollFlags::POLLIN));
                    which.push(2);
                }
                match poll(&mut fds, timeout) {
                    Ok(0) => {
                        // The drain after SIGTERM ran out of time.
                        self.drain_timed_out = true;
                        break;
                    }
                    Ok(_) => {}
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(e) => return Err(Error::sys("poll", e)),
                }
                for (fd, i) in fds.iter().zip(which) {
                    ready[i] = fd.revents().is_some_and(|r| !r.is_empty());
                }
            }
            for (i, is_ready) in ready.iter().take(2).enumerate() {
                if *is_ready {
                    self.read(i, &mut buf, consumer)?;
                }
            }
            if ready[2] && self.signal_fd.read_signal().ok().flatten().is_some() {
                self.terminated = true;
                deadline = Some(Instant::now() + self.drain_timeout);
            }
            consumer.idle();
        }
        // Whatever is held (a line without its newline) goes out now.
        let now = SystemTime::now();
        for (_, splitter) in self.streams.iter_mut().flatten() {
            splitter.finish(now, &mut |r| consumer.record(r));
        }
        Ok(())
    }

    fn read(
        &mut self,
        index: usize,
        buf: &mut [u8],
        consumer: &mut impl Consumer,
    ) -> Result<(), Error> {
        let emit = &mut |r: Record<'_>| consumer.record(r);
        let Some((file, splitter)) = self.streams[index].as_mut() else {
            return Ok(());
        };
        match file.read(buf) {
            Ok(0) => {
                splitter.finish(SystemTime::now(), emit);
                self.streams[index] = None;
            }
            Ok(n) => splitter.push(&buf[..n], SystemTime::now(), emit),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::Interrupted | std::io::ErrorKind::WouldBlock
                ) => {}
            Err(e) => {
                return Err(Error::sys(
                    if index == 0 {
                        "reading the container's stdout (fd 3)"
                    } else {
                        "reading the container's stderr (fd 4)"
                    },
                    e,
                ));
            }
        }
        Ok(())
    }
}
