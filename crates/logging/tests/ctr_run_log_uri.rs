//! `ctr run --log-uri binary:///…/ctrd-log-driver?…` under containerd 1.6 and 2.1, with our
//! runc shim and Debian's Go shim: mixed stdout/stderr read back byte-exact and per-stream
//! ordered across many rotations (gzipped), a 1 MiB line, output without a final newline,
//! binary output through the CRI sink, and no driver left running.
//!
//! SIGTERM to the driver during a burst loses nothing.
//!
//! The default size is short (8 MiB); `CTRD_LOG_TEST_MIB=100` runs the full 100 MiB.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{Bed, Shim, driver, read_back, rotations, wait_gone};
use ctrd_logging::reader::{Format, LogReader};
use ctrd_testbed::Daemon;

/// Total bytes of ordinary lines the container writes (both streams).
fn total_bytes() -> usize {
    std::env::var("CTRD_LOG_TEST_MIB")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(8)
        << 20
}

/// Chunk files for each stream under `data`, and what the container's script prints.
/// Returns (script, expected stdout, expected stderr).
fn mixed_output(data: &Path) -> (String, Vec<u8>, Vec<u8>) {
    const CHUNKS: usize = 24;
    let per_chunk = total_bytes() / (2 * CHUNKS);
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let mut line = 0usize;
    for chunk in 0..CHUNKS {
        for (stream, all) in [("out", &mut out), ("err", &mut err)] {
            let mut bytes = Vec::with_capacity(per_chunk + 256);
            while bytes.len() < per_chunk {
                // Lengths from 0 to 300, with characters JSON must escape and some UTF-8.
                let pad = "abc\"\\<>&\té".repeat(line % 31);
                bytes.extend_from_slice(format!("{stream} {line} {pad}\n").as_bytes());
                if line.is_multiple_of(97) {
                    bytes.push(b'\n');
                }
                line += 1;
            }
            std::fs::write(data.join(format!("{stream}.{chunk}")), &bytes).expect("chunk");
            all.extend_from_slice(&bytes);
        }
    }
    // One 1 MiB line on each stream.
    let mut long = vec![b'L'; 1 << 20];
    long.push(b'\n');
    std::fs::write(data.join("long"), &long).expect("long line");
    out.extend_from_slice(&long);
    err.extend_from_slice(&long);
    out.extend_from_slice(b"out-tail-without-newline");
    err.extend_from_slice(b"err-tail");
    let script = format!(
        "for i in $(seq 0 {}); do cat /data/out.$i; cat /data/err.$i >&2; done; \
         cat /data/long; cat /data/long >&2; printf out-tail-without-newline; printf err-tail >&2",
        CHUNKS - 1
    );
    (script, out, err)
}

fn byte_exact_across_rotations(daemon: Daemon, shim: Shim) {
    let bed = Bed::new(daemon, shim);
    let data = bed.rootfs.path().join("data");
    std::fs::create_dir_all(&data).expect("data folder");
    let logs = tempfile::Builder::new()
        .prefix("ctrd-logs-")
        .tempdir_in("/tmp")
        .expect("tempdir");
    let limit = Duration::from_secs(120 + (total_bytes() >> 20) as u64 * 3);

    // json-file, rotated at about a twentieth of the output, rotated files gzipped.
    let (script, out, err) = mixed_output(&data);
    let log = logs.path().join("mixed.log");
    let max_size = (total_bytes() * 13 / 10 / 20).max(64 * 1024);
    let uri = format!(
        "binary://{}?sink=json-file&path={}&max-size={max_size}&max-file=1000&compress=true",
        driver().display(),
        log.display()
    );
    let run = bed.run_logged("mixed", &uri, &script, limit);
    assert!(
        run.status.success(),
        "ctr run: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    wait_gone(&logs.path().display().to_string(), Duration::from_secs(15));
    assert!(rotations(&log) >= 10, "only {} rotations", rotations(&log));
    let (got_out, got_err) = read_back(&log, Format::JsonFile);
    assert!(
        got_out == out,
        "stdout differs: {} bytes back of {}",
        got_out.len(),
        out.len()
    );
    assert!(
        got_err == err,
        "stderr differs: {} bytes back of {}",
        got_err.len(),
        err.len()
    );

    // Binary output through the CRI sink: every byte value, newlines included, both streams.
    let binary: Vec<u8> = (0..300_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(data.join("binary"), &binary).expect("binary");
    let log = logs.path().join("binary.log");
    let uri = format!(
        "binary://{}?sink=cri&path={}&max-size=100k&max-file=50",
        driver().display(),
        log.display()
    );
    let run = bed.run_logged(
        "binary",
        &uri,
        "cat /data/binary; cat /data/binary >&2",
        limit,
    );
    assert!(
        run.status.success(),
        "ctr run: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    wait_gone(&logs.path().display().to_string(), Duration::from_secs(15));
    let (got_out, got_err) = read_back(&log, Format::Cri);
    assert!(
        got_out == binary,
        "binary stdout differs ({} bytes back)",
        got_out.len()
    );
    assert!(
        got_err == binary,
        "binary stderr differs ({} bytes back)",
        got_err.len()
    );
}

#[test]
fn ours_on_containerd_1_6() {
    byte_exact_across_rotations(Daemon::Bookworm, Shim::Ours);
}

#[test]
fn ours_on_containerd_2_1() {
    byte_exact_across_rotations(Daemon::Sid, Shim::Ours);
}

#[test]
fn go_shim_on_containerd_1_6() {
    byte_exact_across_rotations(Daemon::Bookworm, Shim::Go);
}

#[test]
fn go_shim_on_containerd_2_1() {
    byte_exact_across_rotations(Daemon::Sid, Shim::Go);
}

/// SIGTERM to the driver in the middle of a burst (as containerd sends it when it closes a
/// task's IO): in blocking mode the driver keeps reading until the container's pipes close,
/// so nothing is lost; and a reader following the log across its rotations sees it all.
fn sigterm_during_a_burst(daemon: Daemon, shim: Shim) {
    let bed = Bed::new(daemon, shim);
    let data = bed.rootfs.path().join("data");
    std::fs::create_dir_all(&data).expect("data folder");
    let mut chunk = Vec::new();
    for i in 0..4000 {
        chunk.extend_from_slice(format!("burst line {i:05} {}\n", "z".repeat(i % 90)).as_bytes());
    }
    std::fs::write(data.join("chunk"), &chunk).expect("chunk");
    let logs = tempfile::Builder::new()
        .prefix("ctrd-logs-")
        .tempdir_in("/tmp")
        .expect("tempdir");
    let log = logs.path().join("burst.log");
    let uri = format!(
        "--log-uri=binary://{}?sink=json-file&path={}&max-size=1m&max-file=100",
        driver().display(),
        log.display()
    );
    let rootfs = bed.rootfs.path().display().to_string();
    let rounds = 40;
    let script = format!("for i in $(seq 1 {rounds}); do cat /data/chunk; sleep 0.05; done");
    let run = bed
        .ctr(&[
            "run", "-d", &uri, "--rootfs", &rootfs, "burst", "/bin/sh", "-c", &script,
        ])
        .output()
        .expect("ctr run -d");
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let needle = logs.path().display().to_string();
    // A follower reads along as the driver writes and rotates, until the driver is gone.
    let follower = {
        let needle = needle.clone();
        let reader = LogReader::follow(&log, Format::JsonFile, move || {
            ctrd_testbed::cleanup::processes_mentioning(&needle).is_empty()
        })
        .expect("follow");
        std::thread::spawn(move || {
            let mut out = Vec::new();
            for entry in reader {
                entry.expect("entry").append_to(&mut out);
            }
            out
        })
    };
    // Once a few rounds are in, SIGTERM the driver.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while rotations(&log) < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the burst did not start"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let drivers = ctrd_testbed::cleanup::processes_mentioning(&needle);
    assert_eq!(drivers.len(), 1, "one driver: {drivers:?}");
    nix::sys::signal::kill(drivers[0], nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
    // The container finishes its burst; then it goes.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let tasks = bed.ctr(&["tasks", "ls"]).output().expect("tasks ls");
        let listing = String::from_utf8_lossy(&tasks.stdout).into_owned();
        if listing
            .lines()
            .any(|l| l.starts_with("burst ") && l.contains("STOPPED"))
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the burst did not end: {listing}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = bed.ctr(&["tasks", "delete", "burst"]).output();
    let _ = bed.ctr(&["containers", "rm", "burst"]).output();
    wait_gone(&needle, Duration::from_secs(15));
    let followed = follower.join().expect("follower");
    assert!(
        followed == chunk.repeat(rounds),
        "the follower got {} bytes of {}",
        followed.len(),
        chunk.len() * rounds
    );
    let (out, err) = read_back(&log, Format::JsonFile);
    assert!(err.is_empty());
    assert!(
        out == chunk.repeat(rounds),
        "{} bytes back of {}",
        out.len(),
        chunk.len() * rounds
    );
}

#[test]
fn sigterm_during_a_burst_ours_on_containerd_1_6() {
    sigterm_during_a_burst(Daemon::Bookworm, Shim::Ours);
}

#[test]
fn sigterm_during_a_burst_ours_on_containerd_2_1() {
    sigterm_during_a_burst(Daemon::Sid, Shim::Ours);
}

#[test]
fn sigterm_during_a_burst_go_shim_on_containerd_1_6() {
    sigterm_during_a_burst(Daemon::Bookworm, Shim::Go);
}

#[test]
fn sigterm_during_a_burst_go_shim_on_containerd_2_1() {
    sigterm_during_a_burst(Daemon::Sid, Shim::Go);
}
