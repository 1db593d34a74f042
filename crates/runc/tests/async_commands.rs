//! The async commands on tokio, against real runc: the same core as the blocking ones.
#![cfg(feature = "async")]

mod common;

use std::time::Duration;

use common::{TestRunc, exit_code};
use ctrd_runc::spec::{LinuxMemoryBuilder, LinuxResourcesBuilder, ProcessBuilder};
use ctrd_runc::{CreateOptions, Error, ExecOptions, PipeSpec, ProcessIo, Status};
use ctrd_testbed::Bundle;
use tokio::io::AsyncReadExt;

#[tokio::test(flavor = "current_thread")]
async fn async_life_cycle() {
    let t = TestRunc::new();
    let runc = t.runc.to_async();
    let bundle = Bundle::busybox(&["sleep", "300"]).expect("bundle");
    let id = "async";
    let pid = runc
        .create(id, bundle.path(), CreateOptions::default())
        .await
        .expect("create");
    runc.start(id).await.expect("start");
    let state = runc.state(id).await.expect("state");
    assert_eq!((state.status, state.pid as u32), (Status::Running, pid));
    assert!(runc.ps(id).await.expect("ps").contains(&(pid as i32)));

    let (io, pipes) = ProcessIo::pipes(PipeSpec {
        stdout: true,
        ..Default::default()
    })
    .expect("pipes");
    let process = ProcessBuilder::default()
        .args(vec!["echo".to_string(), "from-exec".into()])
        .cwd("/")
        .build()
        .expect("process");
    let exec_pid = runc
        .exec_detached(
            id,
            &process,
            ExecOptions {
                io: Some(io),
                ..Default::default()
            },
        )
        .await
        .expect("exec");
    let mut out = String::new();
    let reader =
        tokio::net::unix::pipe::Receiver::from_owned_fd(pipes.stdout.expect("stdout").into())
            .expect("async pipe");
    let mut reader = reader;
    reader.read_to_string(&mut out).await.expect("read");
    assert_eq!(out, "from-exec\n");
    assert_eq!(exit_code(exec_pid), 0);

    let resources = LinuxResourcesBuilder::default()
        .memory(
            LinuxMemoryBuilder::default()
                .limit(32 * 1024 * 1024)
                .build()
                .expect("memory"),
        )
        .build()
        .expect("resources");
    runc.update(id, &resources).await.expect("update");
    let stats = runc.stats(id).await.expect("stats");
    assert_eq!(stats.memory.usage.limit, 32 * 1024 * 1024);

    let mut events = runc
        .events(id, Duration::from_millis(100))
        .await
        .expect("events");
    let event = events.next().await.expect("an event").expect("parses");
    assert_eq!(event.kind, "stats");
    drop(events);

    runc.pause(id).await.expect("pause");
    assert_eq!(runc.state(id).await.expect("state").status, Status::Paused);
    runc.resume(id).await.expect("resume");
    runc.kill(id, 9, true).await.expect("kill");
    assert_eq!(exit_code(pid), 137);
    runc.delete(id, true).await.expect("delete");
    assert!(runc.state(id).await.expect_err("gone").is_not_found());
    assert!(matches!(
        runc.delete("../x", true).await,
        Err(Error::InvalidId { .. })
    ));
    assert!(!runc.version().await.expect("version").runc.is_empty());
    assert!(!runc.features().await.expect("features").hooks.is_empty());
}

#[tokio::test(flavor = "current_thread")]
async fn async_timeout_kills_a_hung_runc() {
    use std::os::unix::fs::PermissionsExt;

    let dir = tempfile::tempdir().expect("tempdir");
    let fake = dir.path().join("runc");
    std::fs::write(&fake, "#!/bin/sh\nexec sleep 30\n").expect("script");
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let runc = ctrd_runc::Runc::builder()
        .binary(&fake)
        .timeout(Duration::from_millis(300))
        .build()
        .to_async();
    let err = runc.list().await.expect_err("hangs");
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
}
