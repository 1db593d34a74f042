//! Non-blocking mode: a slow sink never holds the container up; the ring drops the oldest
//! records and counts them, and what reaches the sink stays in order. Blocking mode with the
//! same slow sink loses nothing.

use std::io::Write;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ctrd_logging::{Driver, Error, Mode, Record, RunOptions, Summary, run};

/// A sink that takes 200 µs a record and remembers what it got.
struct Slow(Arc<Mutex<Vec<Vec<u8>>>>);

impl Driver for Slow {
    fn write(&mut self, record: &Record<'_>) -> Result<(), Error> {
        std::thread::sleep(Duration::from_micros(200));
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(record.bytes.to_vec());
        Ok(())
    }
}

/// Writes `lines` numbered lines into a driver running with `mode`; returns the summary, what
/// the sink got, and how long the writer took.
fn drive(mode: Mode, lines: usize) -> (Summary, Vec<Vec<u8>>, Duration) {
    let (out_r, mut out_w) = std::io::pipe().expect("pipe");
    let (err_r, err_w) = std::io::pipe().expect("pipe");
    let got = Arc::new(Mutex::new(Vec::new()));
    let sink = Slow(got.clone());
    let options = RunOptions {
        mode,
        ..RunOptions::default()
    };
    let driver = std::thread::spawn(move || {
        run(OwnedFd::from(out_r), OwnedFd::from(err_r), sink, &options).expect("run")
    });
    drop(err_w);
    let started = Instant::now();
    for i in 0..lines {
        out_w
            .write_all(format!("line {i:06}\n").as_bytes())
            .expect("write");
    }
    let took = started.elapsed();
    drop(out_w);
    let summary = driver.join().expect("driver");
    let got = got.lock().unwrap_or_else(|p| p.into_inner()).clone();
    (summary, got, took)
}

#[test]
fn a_slow_sink_drops_the_oldest_and_counts_them() {
    let lines = 20_000;
    let (summary, got, took) = drive(Mode::NonBlocking { max_buffer: 4096 }, lines);
    // The sink needs 4 s for all of it; the writer is not held up.
    assert!(took < Duration::from_secs(2), "the writer waited {took:?}");
    assert!(summary.dropped.records > 0, "{summary:?}");
    assert_eq!(
        summary.records + summary.dropped.records,
        lines as u64,
        "{summary:?}"
    );
    assert_eq!(got.len() as u64, summary.records);
    // What arrived is in order, and the last line always arrives.
    let numbers: Vec<usize> = got
        .iter()
        .map(|l| {
            String::from_utf8_lossy(&l[5..])
                .parse()
                .expect("a line number")
        })
        .collect();
    assert!(numbers.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(numbers.last(), Some(&(lines - 1)));
}

#[test]
fn blocking_mode_loses_nothing_with_the_same_sink() {
    let lines = 3_000;
    let (summary, got, _) = drive(Mode::Blocking, lines);
    assert_eq!(summary.dropped.records, 0);
    assert_eq!(got.len(), lines);
    assert!(
        got.iter()
            .enumerate()
            .all(|(i, l)| *l == format!("line {i:06}").into_bytes())
    );
}
