//! The file sinks rotate by size (keeping `max-file` files, gzipping rotated ones on request)
//! and the reader gives back every byte, reading the files afterwards or following them
//! while they are written and rotated.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, SystemTime};

use ctrd_logging::reader::{Format, LogReader};
use ctrd_logging::rotate::{Rotation, rotated_name};
use ctrd_logging::sinks::{Cri, FileOptions, JsonFile};
use ctrd_logging::{Driver, Record, Stream};

fn records(n: usize) -> Vec<(Stream, Vec<u8>, bool)> {
    (0..n)
        .map(|i| {
            let stream = if i % 3 == 0 {
                Stream::Stderr
            } else {
                Stream::Stdout
            };
            (
                stream,
                format!("record {i} {}", "x".repeat(i % 50)).into_bytes(),
                i % 7 == 0,
            )
        })
        .collect()
}

fn write_all(driver: &mut dyn Driver, records: &[(Stream, Vec<u8>, bool)]) {
    for (i, (stream, bytes, partial)) in records.iter().enumerate() {
        driver
            .write(&Record {
                stream: *stream,
                time: SystemTime::now(),
                bytes,
                partial: *partial,
            })
            .expect("write");
        if i % 100 == 0 {
            driver.flush().expect("flush");
        }
    }
    driver.flush().expect("flush");
}

fn expected(records: &[(Stream, Vec<u8>, bool)]) -> Vec<(Stream, Vec<u8>, bool)> {
    records.to_vec()
}

fn read(reader: LogReader) -> Vec<(Stream, Vec<u8>, bool)> {
    reader
        .map(|e| {
            let e = e.expect("entry");
            (e.stream, e.bytes, e.partial)
        })
        .collect()
}

fn options(path: &Path, max_size: u64, max_file: u32, compress: bool) -> FileOptions {
    FileOptions {
        path: path.to_owned(),
        rotation: Rotation {
            max_size: Some(max_size),
            max_file,
            compress,
        },
    }
}

#[test]
fn rotated_and_gzipped_files_read_back_in_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("c.log");
    let all = records(5000);
    {
        let mut sink = JsonFile::open(options(&path, 20_000, 1000, true)).expect("open");
        write_all(&mut sink, &all);
    }
    assert!(
        rotated_name(&path, 10, true).exists(),
        "at least 10 rotations, gzipped"
    );
    assert!(
        !rotated_name(&path, 1, false).exists(),
        "rotated files are compressed"
    );
    assert_eq!(
        read(LogReader::open(&path, Format::JsonFile).expect("open")),
        expected(&all)
    );
}

#[test]
fn max_file_keeps_that_many_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("c.log");
    let mut sink = Cri::open(options(&path, 5_000, 3, false)).expect("open");
    write_all(&mut sink, &records(3000));
    drop(sink);
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["c.log", "c.log.1", "c.log.2"]);
    // The newest records are all there, in order.
    let back = read(LogReader::open(&path, Format::Cri).expect("open"));
    let all = records(3000);
    assert_eq!(back[..], all[all.len() - back.len()..]);
}

/// Writes 20 000 records to `c.log` in files of `size` bytes, keeping `max_file`, while a
/// follower reads them; `written` checks the files once the writer is done, before the
/// follower is told so. The follower must see every record, in order.
fn follow_while_writing(size: u64, max_file: u32, written: impl Fn(&Path, bool)) {
    for compress in [false, true] {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.log");
        let all = records(20_000);
        let mut sink = Cri::open(options(&path, size, max_file, compress)).expect("open");
        let done = Arc::new(AtomicBool::new(false));
        let follower = {
            let done = done.clone();
            let reader = LogReader::follow(&path, Format::Cri, move || done.load(Ordering::SeqCst))
                .expect("follow");
            std::thread::spawn(move || read(reader))
        };
        write_all(&mut sink, &all);
        drop(sink);
        written(&path, compress);
        done.store(true, Ordering::SeqCst);
        let back = follower.join().expect("follower");
        assert_eq!(back.len(), all.len(), "compress={compress}");
        assert!(
            back == all,
            "compress={compress}: same records in the same order"
        );
    }
}

#[test]
fn a_follower_sees_every_record_across_rotations() {
    follow_while_writing(30_000, 1000, |_, _| {});
}

/// As above with files of 6 000 bytes: about 260 rotations, so that the follower looks for
/// its place among hundreds of rotated (and gzipped) files while the writer renames all of
/// them at every rotation. (The writer tries `max-file` renames per rotation, whether the
/// files exist or not, so a larger `max-file` makes this test slow, not harder.)
#[test]
fn a_follower_sees_every_record_across_hundreds_of_rotations() {
    follow_while_writing(6_000, 300, |path, compress| {
        assert!(
            rotated_name(path, 200, compress).exists(),
            "compress={compress}: at least 200 rotations"
        );
    });
}

fn entry(reader: &mut LogReader) -> Option<(Stream, Vec<u8>, bool)> {
    reader
        .next_entry()
        .expect("entry")
        .map(|e| (e.stream, e.bytes, e.partial))
}

/// Runs `f` in a thread and waits for it, failing after `limit` instead of hanging.
fn within<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit)
        .unwrap_or_else(|e| panic!("the follower did not end within {limit:?}: {e}"))
}

#[test]
fn a_follower_outrun_by_max_file_goes_on_with_the_files_left() {
    for compress in [false, true] {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.log");
        let all = records(5000);
        let mut sink = Cri::open(options(&path, 5_000, 3, compress)).expect("open");
        write_all(&mut sink, &all[..10]);
        let done = Arc::new(AtomicBool::new(false));
        let mut reader = {
            let done = done.clone();
            LogReader::follow(&path, Format::Cri, move || done.load(Ordering::SeqCst))
                .expect("follow")
        };
        let mut back: Vec<_> = (0..10).map_while(|_| entry(&mut reader)).collect();
        assert_eq!(back[..], all[..10], "compress={compress}");
        // The follower holds the live file and reads no further while the writer rotates it
        // away and, max-file being 3, deletes it and the files after it.
        write_all(&mut sink, &all[10..]);
        drop(sink);
        done.store(true, Ordering::SeqCst);
        let on_disk = read(LogReader::open(&path, Format::Cri).expect("open"));
        let (rest, gaps) = within(Duration::from_secs(60), move || {
            let rest: Vec<_> = std::iter::from_fn(|| entry(&mut reader)).collect();
            (rest, reader.gaps())
        });
        back.extend(rest);
        assert_eq!(gaps, 1, "compress={compress}: the loss is counted once");
        // What the follower read: the file it held, to its end, then every record still on
        // disk; the files in between are lost.
        let kept = back.len() - on_disk.len();
        assert!(
            kept >= 10 && kept + on_disk.len() < all.len(),
            "compress={compress}: kept {kept}, {} on disk, {} written",
            on_disk.len(),
            all.len()
        );
        assert!(back[..kept] == all[..kept], "compress={compress}");
        assert!(back[kept..] == on_disk[..], "compress={compress}");
    }
}

#[test]
fn a_slow_follower_reads_every_gzipped_file_in_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("c.log");
    let all = records(20_000);
    let mut sink = Cri::open(options(&path, 30_000, 1000, true)).expect("open");
    // Rotated (and gzipped) files before the follower starts: it starts with the oldest.
    write_all(&mut sink, &all[..2000]);
    assert!(
        rotated_name(&path, 2, true).exists(),
        "rotated before following"
    );
    let done = Arc::new(AtomicBool::new(false));
    let follower = {
        let done = done.clone();
        let mut reader = LogReader::follow(&path, Format::Cri, move || done.load(Ordering::SeqCst))
            .expect("follow");
        std::thread::spawn(move || {
            let mut back = Vec::new();
            while let Some(e) = entry(&mut reader) {
                back.push(e);
                // Behind the writer by many rotations most of the time.
                if back.len() % 1000 == 10 {
                    std::thread::sleep(Duration::from_millis(30));
                }
            }
            (back, reader.gaps())
        })
    };
    write_all(&mut sink, &all[2000..]);
    drop(sink);
    done.store(true, Ordering::SeqCst);
    let (back, gaps) = follower.join().expect("follower");
    assert_eq!(gaps, 0);
    assert_eq!(back.len(), all.len());
    assert!(back == all, "same records in the same order");
}
