//! The publisher delivers events in order, retries and reconnects when containerd's ttrpc
//! socket goes away and comes back, falls back to the publish binary when it stays away, and
//! refuses events (instead of growing) when its queue is full.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ctrd_api::TypeUrl;
use ctrd_api::containerd::events::{TaskExit, TaskOom};
use ctrd_api::containerd::services::events::ttrpc::v1::{ForwardRequest, events_ttrpc_async};
use ctrd_api::containerd::types::Envelope;
use ctrd_api::prost::Message;
use ctrd_api::ttrpc;
use ctrd_shim::{PublishError, Publisher, Target};
use tokio::sync::mpsc;

/// Stands in for containerd's event service.
struct Receiver(mpsc::UnboundedSender<Envelope>);

#[ctrd_macros::service(
    ctrd_api::containerd::services::events::ttrpc::v1::events_ttrpc_async::Events
)]
impl events_ttrpc_async::Events for Receiver {
    async fn forward(
        &self,
        _ctx: &ttrpc::r#async::TtrpcContext,
        req: ForwardRequest,
    ) -> ttrpc::Result<()> {
        if let Some(envelope) = req.envelope {
            let _ = self.0.send(envelope);
        }
        Ok(())
    }
}

async fn serve(path: &Path, tx: mpsc::UnboundedSender<Envelope>) -> ttrpc::r#async::Server {
    let _ = std::fs::remove_file(path);
    let mut server = ttrpc::r#async::Server::new()
        .bind(&format!("unix://{}", path.display()))
        .expect("bind")
        .register_service(Receiver(tx).into_events_service());
    server.start().await.expect("start");
    server
}

async fn received(rx: &mut mpsc::UnboundedReceiver<Envelope>) -> TaskOom {
    let envelope = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("an event within 5 s")
        .expect("channel open");
    assert_eq!(envelope.topic, "/tasks/oom");
    assert_eq!(envelope.namespace, "ns");
    TaskOom::from_any(envelope.event.as_ref().expect("payload")).expect("decodes")
}

fn oom(id: &str) -> TaskOom {
    TaskOom {
        container_id: id.into(),
    }
}

#[tokio::test(flavor = "current_thread")]
async fn retries_across_a_restarted_receiver() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("events.sock");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut server = serve(&path, tx.clone()).await;
    let publisher = Publisher::start(
        Target {
            ttrpc_address: path.display().to_string(),
            namespace: "ns".into(),
            ..Default::default()
        },
        None,
    );

    for id in ["1", "2", "3"] {
        publisher.publish(&oom(id)).expect("queued");
    }
    for id in ["1", "2", "3"] {
        assert_eq!(received(&mut rx).await.container_id, id, "in order");
    }

    // The receiver goes away; an event published meanwhile arrives once it is back.
    server.shutdown().await.expect("shutdown");
    drop(server);
    publisher.publish(&oom("4")).expect("queued");
    tokio::time::sleep(Duration::from_millis(120)).await;
    let _server = serve(&path, tx).await;
    assert_eq!(received(&mut rx).await.container_id, "4");
    assert!(publisher.flush(Duration::from_secs(5)).await);
}

#[tokio::test(flavor = "current_thread")]
async fn falls_back_to_the_publish_binary() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let script: PathBuf = dir.path().join("fake-containerd");
    let record = dir.path().join("record");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$@\" > {0}.args\ncat > {0}.stdin\n",
            record.display()
        ),
    )
    .expect("script");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let publisher = Publisher::start(
        Target {
            ttrpc_address: dir.path().join("nobody-listens").display().to_string(),
            grpc_address: "/run/fake/containerd.sock".into(),
            publish_binary: script.display().to_string(),
            namespace: "ns".into(),
        },
        None,
    );
    let exit = TaskExit {
        container_id: "c9".into(),
        exit_status: 3,
        ..Default::default()
    };
    publisher.publish(&exit).expect("queued");
    assert!(publisher.flush(Duration::from_secs(10)).await, "flushed");
    let args = std::fs::read_to_string(record.with_extension("args")).expect("the binary ran");
    assert_eq!(
        args.trim(),
        "--address /run/fake/containerd.sock publish --topic /tasks/exit --namespace ns"
    );
    let stdin = std::fs::read(record.with_extension("stdin")).expect("stdin");
    let any = ctrd_api::prost_types::Any::decode(stdin.as_slice()).expect("an Any on stdin");
    assert_eq!(TaskExit::from_any(&any).expect("TaskExit"), exit);
}

#[tokio::test(flavor = "current_thread")]
async fn a_full_queue_refuses_events() {
    let dir = tempfile::tempdir().expect("tempdir");
    let publisher = Publisher::start(
        Target {
            ttrpc_address: dir.path().join("nobody-listens").display().to_string(),
            namespace: "ns".into(),
            ..Default::default()
        },
        None,
    );
    let refused = (0..ctrd_shim::QUEUE + 10)
        .filter(|i| {
            matches!(
                publisher.publish(&oom(&i.to_string())),
                Err(PublishError::Full { .. })
            )
        })
        .count();
    assert!(
        refused >= 9,
        "events beyond the bound are refused, not buffered ({refused})"
    );
}
