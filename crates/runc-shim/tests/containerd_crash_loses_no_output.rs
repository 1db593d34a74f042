//! containerd killed with SIGKILL and restarted while containers served by our shim write a
//! counter every 10 ms, one through FIFOs (read by this process, which outlives the daemon)
//! and one to a `file://` log, and a third exits while the daemon is down:
//!
//! - no byte is lost: both counters arrive whole, without a gap, in order;
//! - the tasks are still managed after the restart: kill, wait and delete work through the
//!   new daemon;
//! - exit codes are delivered, the one that came while the daemon was down included;
//! - nothing is left (processes, mounts, runc state, sockets, cgroups).
//!
//! On every selected daemon.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Bed, Shim};
use ctrd_client::{Client, ImportOptions, NewContainer, Stdio};
use ctrd_testbed::leftovers::left_behind;
use ctrd_testbed::{Daemon, ImageArchive};
use tokio::io::AsyncReadExt;

const IMAGE: &str = "docker.io/library/ctrd-busybox:latest";
/// How many numbers each counter writes (one every 10 ms).
const COUNT: usize = 400;
/// The code the counters exit with on SIGTERM.
const TERM_CODE: u32 = 7;
/// The code of the container that exits while the daemon is down.
const DOWN_CODE: u32 = 5;

fn counter_script() -> String {
    format!(
        "trap 'exit {TERM_CODE}' TERM; i=0; while [ $i -lt {COUNT} ]; do echo $i; i=$((i+1)); \
         sleep 0.01; done; echo done; sleep 300 & wait"
    )
}

fn expected_output() -> String {
    let mut text: String = (0..COUNT).map(|i| format!("{i}\n")).collect();
    text.push_str("done\n");
    text
}

async fn connect(bed: &Bed) -> Client {
    Client::connect(bed.containerd().grpc_address())
        .await
        .expect("connect")
        .try_with_namespace(&bed.ns)
        .expect("namespace")
}

/// Where the counter's text first differs from what it should be.
fn first_gap(got: &str) -> Option<String> {
    let expected = expected_output();
    if got == expected {
        return None;
    }
    let same = got
        .bytes()
        .zip(expected.bytes())
        .take_while(|(a, b)| a == b)
        .count();
    let from = got[..same].rfind('\n').map_or(0, |i| i + 1);
    Some(format!(
        "{} of {} bytes; first difference after {:?}, then {:?}",
        got.len(),
        expected.len(),
        &got[from.saturating_sub(20)..from],
        got.get(from..(from + 20).min(got.len())).unwrap_or("")
    ))
}

async fn crash(daemon: Daemon) {
    let on = format!("containerd {}", daemon.version());
    let mut bed = Bed::new(daemon, Shim::Ours);
    bed.ns = format!("crash-{}", daemon.version().replace('.', "-"));
    let archive = ImageArchive::busybox(IMAGE).expect("image");
    let client = connect(&bed).await;
    client
        .import(archive.path(), ImportOptions::default().unpack("overlayfs"))
        .await
        .expect("import");
    let logs = tempfile::tempdir().expect("tempdir");
    let log = logs.path().join("counter.log");

    let script = counter_script();
    for id in ["fifo", "file"] {
        client
            .create_container(NewContainer::new(id, IMAGE).args(["/bin/sh", "-c", &script]))
            .await
            .expect("create");
    }
    let down_script = format!("sleep 1; exit {DOWN_CODE}");
    client
        .create_container(NewContainer::new("down", IMAGE).args(["/bin/sh", "-c", &down_script]))
        .await
        .expect("create");
    let (fifo_task, mut io) = client
        .new_task("fifo", Stdio::fifos(false))
        .await
        .expect("task");
    let mut stdout = io.stdout.take().expect("stdout");
    let fifo_seen = Arc::new(Mutex::new(Vec::<u8>::new()));
    let seen = Arc::clone(&fifo_seen);
    let reader = tokio::spawn(async move {
        let mut chunk = vec![0u8; 4096];
        while let Ok(n) = stdout.read(&mut chunk).await {
            if n == 0 {
                break;
            }
            seen.lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend_from_slice(&chunk[..n]);
        }
    });
    let fifo_text = || {
        String::from_utf8_lossy(&fifo_seen.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    };
    let (file_task, _) = client
        .new_task("file", Stdio::File(log.clone()))
        .await
        .expect("task");
    let (down_task, _) = client.new_task("down", Stdio::Null).await.expect("task");
    for task in [&fifo_task, &file_task, &down_task] {
        task.start().await.expect("start");
    }

    // Crash while the counters count and before "down" exits; restart after it did.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let down_at = Instant::now();
    bed.crash_containerd();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    println!(
        "{on}: containerd killed and restarted ({:.1?} down)",
        down_at.elapsed()
    );

    let client = connect(&bed).await;
    let down = client
        .load_task("down")
        .await
        .expect("the task after restart");
    let down_status = tokio::time::timeout(Duration::from_secs(20), down.wait())
        .await
        .expect("wait returns")
        .expect("wait");
    down.delete().await.expect("delete");

    // Wait for both counters to finish, then stop them through the new daemon.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !(std::fs::read_to_string(&log).is_ok_and(|t| t.ends_with("done\n"))
        && fifo_text().ends_with("done\n"))
    {
        assert!(
            Instant::now() < deadline,
            "{on}: the counters never finished: fifo {:?}",
            first_gap(&fifo_text())
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut codes = Vec::new();
    for id in ["fifo", "file"] {
        let task = client.load_task(id).await.expect("the task after restart");
        let mut stopped = None;
        let deadline = Instant::now() + Duration::from_secs(30);
        while stopped.is_none() {
            task.kill(15, false).await.expect("kill after restart");
            stopped = tokio::time::timeout(Duration::from_millis(500), task.wait())
                .await
                .ok();
            assert!(Instant::now() < deadline, "{on}: {id} does not stop");
        }
        let status = stopped.expect("stopped").expect("wait");
        codes.push((id, status.code));
        task.delete().await.expect("delete after restart");
        client.delete_container(id).await.expect("delete container");
    }
    client
        .delete_container("down")
        .await
        .expect("delete container");
    tokio::time::timeout(Duration::from_secs(10), reader)
        .await
        .expect("the FIFO reaches its end")
        .expect("reader");
    let fifo_text = fifo_text();
    drop((fifo_task, file_task, down_task));
    let file_text = std::fs::read_to_string(&log).expect("the log");
    // The shims exit once containerd has shut them down after the deletes.
    let deadline = Instant::now() + Duration::from_secs(10);
    let left = loop {
        let left = left_behind(bed.containerd(), &bed.ns, &["fifo", "file", "down"]);
        if left.is_empty() || Instant::now() > deadline {
            break left;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    println!(
        "{on}: exit codes {codes:?}, down {}; fifo {} bytes, file {} bytes",
        down_status.code,
        fifo_text.len(),
        file_text.len()
    );
    if !left.is_empty() {
        bed.sweep();
    }
    assert_eq!(first_gap(&fifo_text), None, "{on}: the FIFO counter");
    assert_eq!(first_gap(&file_text), None, "{on}: the file:// counter");
    assert_eq!(
        down_status.code, DOWN_CODE,
        "{on}: exit while containerd was down"
    );
    assert_eq!(
        codes,
        vec![("fifo", TERM_CODE), ("file", TERM_CODE)],
        "{on}"
    );
    assert!(left.is_empty(), "{on}: left behind: {left:#?}");
}

#[tokio::test]
async fn containerd_killed_and_restarted_loses_no_output_or_exit_code() {
    ctrd_testbed::require_root().unwrap_or_else(|e| panic!("{e}"));
    for daemon in Daemon::selected() {
        crash(daemon).await;
    }
}
