//! The log driver's benchmark: `ctrd-log-driver` writing json-file with rotation, beside `cat`
//! copying the same pipe to a file. 1 KiB lines (MB/s, and the ratio to `cat`), 64-byte lines
//! (lines/s), the driver's peak RSS, and the stripped binary's size.

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use command_fds::{CommandFdExt, FdMapping};

use crate::Error;

/// One copy of `input` through a pipe into `consumer`.
struct Copy {
    seconds: f64,
    peak_rss_kib: u64,
}

/// Runs the benchmark and prints its table; `quick` makes the inputs small (64 and 32 MiB,
/// one round: the smoke run of `cargo xtask test`); otherwise 512 and 256 MiB, best of 3.
pub fn run(quick: bool) -> Result<(), Error> {
    let driver = crate::suite::build_release_bin("ctrd-logging", "ctrd-log-driver")?;
    let dir = tempfile::Builder::new()
        .prefix("ctrd-logbench-")
        .tempdir_in("/tmp")
        .map_err(|e| Error::io(Path::new("/tmp"), e))?;
    let (big, small, rounds) = if quick {
        (64 << 20, 32 << 20, 1)
    } else {
        (512 << 20, 256 << 20, 3)
    };
    let kib_lines = lines(big, 1024);
    let tiny_lines = lines(small, 64);

    let (mut cat_kib, mut drv_kib, mut cat_tiny, mut drv_tiny) =
        (f64::MAX, f64::MAX, f64::MAX, f64::MAX);
    let mut rss = 0;
    for _ in 0..rounds {
        cat_kib = cat_kib.min(copy_with_cat(&kib_lines, dir.path())?.seconds);
        let d = copy_with_driver(&driver, &kib_lines, dir.path())?;
        drv_kib = drv_kib.min(d.seconds);
        rss = rss.max(d.peak_rss_kib);
        cat_tiny = cat_tiny.min(copy_with_cat(&tiny_lines, dir.path())?.seconds);
        let d = copy_with_driver(&driver, &tiny_lines, dir.path())?;
        drv_tiny = drv_tiny.min(d.seconds);
        rss = rss.max(d.peak_rss_kib);
    }
    let mb = |bytes: usize, s: f64| bytes as f64 / 1e6 / s;
    let size = std::fs::metadata(&driver)
        .map_err(|e| Error::io(&driver, e))?
        .len();
    println!(
        "\n==> log driver: json-file with rotation (max-size=50m, max-file=3), best of {rounds}"
    );
    println!("| figure | ctrd-log-driver | cat | ratio | target |");
    println!("|---|---|---|---|---|");
    println!(
        "| 1 KiB lines, {} MiB | {:.0} MB/s | {:.0} MB/s | {:.2}x | >= 0.8x |",
        big >> 20,
        mb(big, drv_kib),
        mb(big, cat_kib),
        cat_kib / drv_kib
    );
    println!(
        "| 64-byte lines, {} MiB | {:.2} M lines/s | {:.2} M lines/s | {:.2}x | >= 1 M lines/s |",
        small >> 20,
        (small / 64) as f64 / drv_tiny / 1e6,
        (small / 64) as f64 / cat_tiny / 1e6,
        cat_tiny / drv_tiny
    );
    println!(
        "| peak RSS | {:.1} MiB | | | < 4 MiB (blocking mode, no ring) |",
        rss as f64 / 1024.0
    );
    println!(
        "| stripped binary | {:.2} MiB | | | < 4 MiB |",
        size as f64 / (1024.0 * 1024.0)
    );
    Ok(())
}

/// `total` bytes of numbered lines of `width` bytes (newline included).
fn lines(total: usize, width: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(total);
    let mut i = 0u64;
    while out.len() + width <= total {
        let head = format!("{i:012} ");
        out.extend_from_slice(head.as_bytes());
        out.extend(std::iter::repeat_n(b'x', width - head.len() - 1));
        out.push(b'\n');
        i += 1;
    }
    out
}

/// Feeds `input` into `pipe` from a thread.
fn feed(
    input: &[u8],
    mut pipe: std::io::PipeWriter,
) -> std::thread::JoinHandle<std::io::Result<()>> {
    let input = input.to_vec();
    std::thread::spawn(move || {
        for chunk in input.chunks(64 * 1024) {
            pipe.write_all(chunk)?;
        }
        Ok(())
    })
}

/// Samples the child's peak RSS (VmHWM) until it exits.
fn watch_rss(pid: u32, done: Arc<AtomicBool>, peak: Arc<AtomicU64>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        while !done.load(Ordering::Relaxed) {
            if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
                let hwm = status
                    .lines()
                    .find_map(|l| l.strip_prefix("VmHWM:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok());
                if let Some(kib) = hwm {
                    peak.fetch_max(kib, Ordering::Relaxed);
                }
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    })
}

fn finish(
    mut child: Child,
    feeder: std::thread::JoinHandle<std::io::Result<()>>,
    started: Instant,
    what: &str,
) -> Result<f64, Error> {
    feeder
        .join()
        .map_err(|_| Error::Message(format!("{what}: the feeding thread panicked")))?
        .map_err(|e| Error::io(Path::new(what), e))?;
    let status = child.wait().map_err(|e| Error::io(Path::new(what), e))?;
    let seconds = started.elapsed().as_secs_f64();
    if !status.success() {
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        return Err(Error::Message(format!("{what} failed ({status}): {err}")));
    }
    Ok(seconds)
}

fn copy_with_cat(input: &[u8], dir: &Path) -> Result<Copy, Error> {
    let out = dir.join("cat.out");
    let file = std::fs::File::create(&out).map_err(|e| Error::io(&out, e))?;
    let (r, w) = std::io::pipe().map_err(|e| Error::io(Path::new("pipe"), e))?;
    let child = Command::new("cat")
        .stdin(Stdio::from(r))
        .stdout(file)
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::io(Path::new("cat"), e))?;
    let started = Instant::now();
    let feeder = feed(input, w);
    let seconds = finish(child, feeder, started, "cat")?;
    let _ = std::fs::remove_file(&out);
    Ok(Copy {
        seconds,
        peak_rss_kib: 0,
    })
}

fn copy_with_driver(driver: &Path, input: &[u8], dir: &Path) -> Result<Copy, Error> {
    let log = dir.join("driver.log");
    let (out_r, out_w) = std::io::pipe().map_err(|e| Error::io(Path::new("pipe"), e))?;
    let (err_r, err_w) = std::io::pipe().map_err(|e| Error::io(Path::new("pipe"), e))?;
    let (mut ready_r, ready_w) = std::io::pipe().map_err(|e| Error::io(Path::new("pipe"), e))?;
    let mut command = Command::new(driver);
    command
        .args([
            "sink",
            "json-file",
            "max-size",
            "50m",
            "max-file",
            "3",
            "path",
        ])
        .arg(&log)
        .env_clear()
        .env("CONTAINER_ID", "bench")
        .env("CONTAINER_NAMESPACE", "bench")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .fd_mappings(vec![
            FdMapping {
                parent_fd: OwnedFd::from(out_r),
                child_fd: 3,
            },
            FdMapping {
                parent_fd: OwnedFd::from(err_r),
                child_fd: 4,
            },
            FdMapping {
                parent_fd: OwnedFd::from(ready_w),
                child_fd: 5,
            },
        ])
        .map_err(|e| Error::Message(format!("passing fds to the driver: {e}")))?;
    let child = command.spawn().map_err(|e| Error::io(driver, e))?;
    drop(command);
    drop(err_w);
    let mut ready = Vec::new();
    ready_r
        .read_to_end(&mut ready)
        .map_err(|e| Error::io(Path::new("the driver's fd 5"), e))?;
    if ready != [1] {
        return Err(Error::Message("ctrd-log-driver did not get ready".into()));
    }
    let done = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(0));
    let watcher = watch_rss(child.id(), done.clone(), peak.clone());
    let started = Instant::now();
    let feeder = feed(input, out_w);
    let seconds = finish(child, feeder, started, "ctrd-log-driver");
    done.store(true, Ordering::Relaxed);
    let _ = watcher.join();
    for entry in std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .flatten()
    {
        if entry
            .file_name()
            .to_string_lossy()
            .starts_with("driver.log")
        {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    Ok(Copy {
        seconds: seconds?,
        peak_rss_kib: peak.load(Ordering::Relaxed),
    })
}
