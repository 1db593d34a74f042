//! Bad input gives one clear error and leaves nothing behind (checked through the content,
//! lease, snapshot and image services); leases guard what is made in them; content writes
//! resume; docker archives import like OCI ones. On containerd 1.6 and 2.1.

mod common;

use std::collections::HashMap;
use std::io::{Seek, SeekFrom, Write};
use std::time::Duration;

use ctrd_client::api::containerd::services::content::v1::{WriteAction, WriteContentRequest};
use ctrd_client::{BlobSource, Client, Error, ImportOptions, NewContainer, Stdio};
use ctrd_testbed::{Daemon, ImageArchive};
use sha2::{Digest, Sha256};

const IMAGE: &str = "docker.io/library/ctrd-bad-busybox:latest";

fn digest(data: &[u8]) -> String {
    let hex: String = Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}

#[tokio::test]
async fn connection_errors_name_the_socket() {
    let err = Client::connect("/nonexistent/ctrd.sock")
        .await
        .expect_err("no socket");
    let text = err.to_string();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    assert!(
        text.contains("/nonexistent/ctrd.sock") && text.contains("No such file"),
        "{text}"
    );

    // A socket whose daemon died: the file is there, nobody listens.
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("dead.sock");
    drop(std::os::unix::net::UnixListener::bind(&socket).expect("bind"));
    let err = Client::connect(&socket).await.expect_err("dead daemon");
    assert!(err.to_string().contains("refused"), "{err}");
    assert_eq!(err.to_string().lines().count(), 1);
}

async fn scenario(daemon: Daemon, dir: &std::path::Path) {
    eprintln!("containerd {}: bad input", daemon.version());
    let namespace = format!("client-bad-{}", daemon.version().replace('.', "-"));
    let bed = common::Bed::start(daemon, &namespace).await;
    let client = &bed.client;

    let unknown = client.clone().with_namespace("never-made");
    assert!(
        matches!(unknown.require_namespace().await, Err(Error::UnknownNamespace(n)) if n == "never-made")
    );

    let archive = ImageArchive::busybox(IMAGE).expect("archive");
    // Not an archive at all.
    let garbage = dir.join("garbage.tar");
    std::fs::write(&garbage, vec![0x5a; 4096]).expect("write");
    let err = client
        .import(&garbage, ImportOptions::default())
        .await
        .expect_err("garbage");
    assert!(matches!(err, Error::Archive { .. }), "{err:?}");
    // Cut short in the middle of the layer.
    let truncated = common::damaged(&archive, dir, "truncated.tar", |f, len| {
        f.set_len(len / 2).expect("truncate")
    });
    let err = client
        .import(&truncated, ImportOptions::default())
        .await
        .expect_err("truncated");
    assert!(err.to_string().contains("truncated"), "{err}");
    // One byte of the layer changed: containerd refuses the commit.
    let corrupt = common::damaged(&archive, dir, "corrupt.tar", |f, len| {
        f.seek(SeekFrom::Start(len / 2)).expect("seek");
        f.write_all(b"\xff\x00\xff").expect("write");
    });
    let err = client
        .import(&corrupt, ImportOptions::default())
        .await
        .expect_err("corrupt");
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err:?}");
    assert_eq!(err.to_string().lines().count(), 1);
    bed.assert_empty().await;

    // Unknown image and container.
    let err = client
        .create_container(NewContainer::new("x", "docker.io/library/nope:latest"))
        .await
        .expect_err("unknown image");
    assert!(
        err.is_not_found() && err.to_string().contains("nope"),
        "{err}"
    );
    let err = client
        .new_task("ghost", Stdio::Null)
        .await
        .expect_err("unknown container");
    assert!(
        err.is_not_found() && err.to_string().contains("ghost"),
        "{err}"
    );
    bed.assert_empty().await;

    // A short source is a size mismatch and leaves no ingest.
    let data = vec![7u8; 300_000];
    let err = client
        .write_blob(
            "short",
            &digest(&data),
            data.len() as u64 + 10,
            HashMap::new(),
            BlobSource::Bytes(data.clone()),
            &|_| {},
        )
        .await
        .expect_err("short source");
    assert!(matches!(err, Error::SizeMismatch { .. }), "{err:?}");
    assert!(client.list_ingests().await.expect("ingests").is_empty());

    // A write cut off part way resumes where containerd's copy ends.
    let lease = client.lease(Duration::from_secs(60)).await.expect("lease");
    let leased = lease.client();
    let half = data.len() / 2;
    let first = vec![
        WriteContentRequest {
            action: WriteAction::Stat as i32,
            r#ref: "resume".into(),
            ..Default::default()
        },
        WriteContentRequest {
            action: WriteAction::Write as i32,
            r#ref: "resume".into(),
            total: data.len() as i64,
            offset: 0,
            data: data[..half].to_vec(),
            ..Default::default()
        },
    ];
    let mut responses = leased
        .content()
        .write(tokio_stream::iter(first))
        .await
        .expect("write")
        .into_inner();
    while let Ok(Some(_)) = responses.message().await {}
    assert_eq!(
        leased.list_ingests().await.expect("ingests"),
        vec!["resume".to_owned()]
    );
    let seen = std::sync::Mutex::new(Vec::new());
    leased
        .write_blob(
            "resume",
            &digest(&data),
            data.len() as u64,
            HashMap::new(),
            BlobSource::Bytes(data.clone()),
            &|n| {
                if let Ok(mut s) = seen.lock() {
                    s.push(n)
                }
            },
        )
        .await
        .expect("resumed write");
    let seen = seen.into_inner().expect("progress");
    assert!(
        seen.first().is_some_and(|&n| n > half as u64),
        "resumed from the middle: {seen:?}"
    );
    assert_eq!(leased.read_blob(&digest(&data)).await.expect("read"), data);
    // The lease held the blob; dropping it (in the background) lets it go.
    drop(lease);
    let mut gone = false;
    for _ in 0..100 {
        if client
            .content_info(&digest(&data))
            .await
            .expect("info")
            .is_none()
        {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(gone, "a dropped lease's content is collected");
    // A kept lease stays.
    let kept = client
        .lease(Duration::from_secs(60))
        .await
        .expect("lease")
        .keep();
    assert_eq!(
        client.list_leases().await.expect("leases"),
        vec![kept.clone()]
    );
    client
        .leases()
        .delete(
            ctrd_client::api::containerd::services::leases::v1::DeleteRequest {
                id: kept,
                sync: true,
            },
        )
        .await
        .expect("delete kept lease");

    // A docker archive imports, unpacks and runs.
    let docker = ImageArchive::busybox_docker("ctrd-docker-busybox:v1").expect("docker archive");
    let images = client
        .import(docker.path(), ImportOptions::default().unpack("overlayfs"))
        .await
        .expect("docker import");
    assert_eq!(images[0].name, "docker.io/library/ctrd-docker-busybox:v1");
    client
        .create_container(NewContainer::new("docker", &images[0].name).args(["true"]))
        .await
        .expect("container");
    let (task, _io) = client.new_task("docker", Stdio::Null).await.expect("task");
    task.start().await.expect("start");
    assert_eq!(task.wait().await.expect("wait").code, 0);
    task.delete().await.expect("delete task");
    client
        .delete_container("docker")
        .await
        .expect("delete container");
    client.remove_image(&images[0].name).await.expect("remove");
    bed.assert_empty().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gives_one_error_and_leaves_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    for daemon in common::daemons() {
        tokio::time::timeout(Duration::from_secs(180), scenario(daemon, dir.path()))
            .await
            .unwrap_or_else(|_| panic!("containerd {} scenario took over 180 s", daemon.version()));
    }
}

#[tokio::test]
async fn a_silent_socket_times_out() {
    // Something listens but never speaks HTTP/2 (a hung daemon).
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("silent.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&socket).expect("bind");
    let options = ctrd_client::ConnectOptions {
        connect_timeout: Duration::from_millis(300),
        call_timeout: Some(Duration::from_millis(300)),
    };
    let started = std::time::Instant::now();
    match Client::connect_with(&socket, options).await {
        Err(err) => {
            eprintln!("{err}");
            assert!(matches!(err, Error::Connect { .. }), "{err:?}");
        }
        Ok(client) => {
            let err = client.server_version().await.expect_err("no answer");
            eprintln!("{err}");
            assert!(
                matches!(
                    err,
                    Error::Timeout {
                        call: "version.Version",
                        ..
                    }
                ),
                "{err:?}"
            );
        }
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
}
