//! The client end to end on containerd 1.6 and 2.1 with our runc shim: import a busybox
//! archive, run it and read its output, exec with and without a terminal, watch typed events,
//! then remove everything and find nothing left.

mod common;

use std::time::Duration;

use ctrd_client::{ImportOptions, NewContainer, Progress, Stdio, TypedEvent};
use ctrd_testbed::{Daemon, ImageArchive};
use futures_util::StreamExt;
use tokio::io::AsyncReadExt;

const IMAGE: &str = "docker.io/library/ctrd-client-busybox:latest";

async fn read_all(pipe: Option<tokio::net::unix::pipe::Receiver>) -> String {
    let mut out = String::new();
    if let Some(mut pipe) = pipe {
        pipe.read_to_string(&mut out).await.expect("read a pipe");
    }
    out
}

async fn scenario(daemon: Daemon) {
    let namespace = format!("client-e2e-{}", daemon.version().replace('.', "-"));
    eprintln!(
        "containerd {}: import, run, exec, events, clean-up",
        daemon.version()
    );
    let bed = common::Bed::start(daemon, &namespace).await;
    let client = &bed.client;
    let version = client.server_version().await.expect("version");
    assert!(version.version.starts_with(daemon.version()), "{version:?}");
    let plugins = client
        .plugins(&["type==io.containerd.snapshotter.v1"])
        .await
        .expect("plugins");
    assert!(plugins.iter().any(|p| p.id == "overlayfs"), "{plugins:?}");

    let mut events = client.subscribe(&[&format!("namespace=={namespace}")]);

    // Import with progress, unpacking into overlayfs.
    let archive = ImageArchive::busybox(IMAGE).expect("image archive");
    let (sender, mut progress) = tokio::sync::mpsc::unbounded_channel();
    let images = client
        .import(
            archive.path(),
            ImportOptions::default()
                .unpack("overlayfs")
                .progress(sender),
        )
        .await
        .expect("import");
    assert_eq!(images.len(), 1);
    assert_eq!(images[0].name, IMAGE);
    let mut total = 0;
    let mut layers_done = 0;
    while let Ok(p) = progress.try_recv() {
        match p {
            Progress::Total { bytes } => total = bytes,
            Progress::Layer { done, .. } => layers_done = done,
            _ => {}
        }
    }
    assert!(
        total > 1_000_000,
        "busybox archive holds over 1 MB, progress said {total}"
    );
    assert_eq!(layers_done, 1);
    assert!(client.image_size(IMAGE).await.expect("size") > 1_000_000);
    let tagged = client
        .tag_image(IMAGE, "docker.io/library/ctrd-client-busybox:second")
        .await
        .expect("tag");
    assert_eq!(tagged.digest, images[0].digest);

    // Run a command, read stdout and stderr, get its exit status.
    client
        .create_container(
            NewContainer::new("once", IMAGE)
                .args(["sh", "-c", "echo out; echo err >&2; echo $GREETING; exit 3"])
                .env("GREETING=hello"),
        )
        .await
        .expect("create container");
    let (task, mut io) = client
        .new_task("once", Stdio::fifos(false))
        .await
        .expect("task");
    let stdout = tokio::spawn(read_all(io.stdout.take()));
    let stderr = tokio::spawn(read_all(io.stderr.take()));
    task.start().await.expect("start");
    let exit = task.wait().await.expect("wait");
    assert_eq!(exit.code, 3);
    assert!(exit.exited_at.is_some());
    assert_eq!(stdout.await.expect("stdout"), "out\nhello\n");
    assert_eq!(stderr.await.expect("stderr"), "err\n");
    let deleted = task.delete().await.expect("delete task");
    assert_eq!(deleted.code, 3);
    client
        .delete_container("once")
        .await
        .expect("delete container");

    // A long-running task: exec with and without a terminal, resize, pause, metrics, kill.
    client
        .create_container(NewContainer::new("long", IMAGE).args(["sleep", "300"]))
        .await
        .expect("create long");
    let (task, _io) = client
        .new_task("long", Stdio::Null)
        .await
        .expect("task long");
    task.start().await.expect("start long");

    let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let (exec, mut io) = task
        .exec(
            "plain",
            &args(&["sh", "-c", "echo from exec; exit 7"]),
            Stdio::fifos(false),
        )
        .await
        .expect("exec");
    let out = tokio::spawn(read_all(io.stdout.take()));
    exec.start().await.expect("start exec");
    assert_eq!(exec.wait().await.expect("wait exec").code, 7);
    assert_eq!(out.await.expect("exec out"), "from exec\n");
    exec.delete().await.expect("delete exec");

    let (exec, mut io) = task
        .exec(
            "tty",
            &args(&["sh", "-c", "sleep 0.3; tty; stty size"]),
            Stdio::terminal(false),
        )
        .await
        .expect("exec tty");
    let out = tokio::spawn(read_all(io.stdout.take()));
    exec.start().await.expect("start tty exec");
    exec.resize(100, 30).await.expect("resize");
    assert_eq!(exec.wait().await.expect("wait tty").code, 0);
    let said = out.await.expect("tty out");
    assert!(said.contains("/dev/pts/"), "tty said {said:?}");
    assert!(said.contains("30 100"), "stty size after resize: {said:?}");
    exec.delete().await.expect("delete tty exec");

    task.pause().await.expect("pause");
    task.resume().await.expect("resume");
    assert!(task.metrics().await.expect("metrics").is_some());
    task.kill(9, false).await.expect("kill");
    assert_eq!(task.wait().await.expect("wait killed").code, 137);
    task.delete().await.expect("delete long");
    client
        .delete_container("long")
        .await
        .expect("delete long container");

    // The events, typed.
    let mut seen = Vec::new();
    while let Ok(Some(Ok(e))) = tokio::time::timeout(Duration::from_secs(2), events.next()).await {
        seen.push(e.event);
    }
    let has = |f: &dyn Fn(&TypedEvent) -> bool| seen.iter().any(f);
    assert!(
        has(&|e| matches!(e, TypedEvent::ImageCreate(i) if i.name == IMAGE)),
        "{seen:#?}"
    );
    assert!(has(
        &|e| matches!(e, TypedEvent::TaskStart(t) if t.container_id == "once")
    ));
    assert!(has(
        &|e| matches!(e, TypedEvent::TaskExit(t) if t.container_id == "once" && t.exit_status == 3)
    ));
    assert!(has(
        &|e| matches!(e, TypedEvent::TaskExecAdded(t) if t.exec_id == "tty")
    ));
    assert!(has(&|e| matches!(e, TypedEvent::TaskPaused(_))));
    assert!(has(
        &|e| matches!(e, TypedEvent::ContainerDelete(c) if c.id == "long")
    ));

    // Remove the images; then nothing of ours is left.
    client
        .remove_image("docker.io/library/ctrd-client-busybox:second")
        .await
        .expect("rm tag");
    client.remove_image(IMAGE).await.expect("rm image");
    bed.assert_empty().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_run_exec_events_and_nothing_left() {
    for daemon in common::daemons() {
        tokio::time::timeout(Duration::from_secs(180), scenario(daemon))
            .await
            .unwrap_or_else(|_| panic!("containerd {} scenario took over 180 s", daemon.version()));
    }
}
