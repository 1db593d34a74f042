//! Events a shim forwards over ttrpc, with the generated ttrpc client, reach real containerd
//! daemons and come out of their gRPC event stream as the same typed message.

use std::time::{Duration, SystemTime};

use ctrd_api::containerd::events::TaskOom;
use ctrd_api::containerd::services::events::ttrpc::v1::{ForwardRequest, events_ttrpc_async};
use ctrd_api::containerd::services::events::v1::SubscribeRequest;
use ctrd_api::containerd::types::Envelope;
use ctrd_api::prost_types::Timestamp;
use ctrd_api::{Event, TypeUrl, ttrpc};
use ctrd_client::Client;
use ctrd_testbed::{Containerd, Daemon};

fn envelope(container: &str) -> Envelope {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    Envelope {
        timestamp: Some(Timestamp {
            seconds: now.as_secs() as i64,
            nanos: now.subsec_nanos() as i32,
        }),
        namespace: "ctrd-fwd".into(),
        topic: TaskOom::TOPIC.into(),
        event: Some(
            TaskOom {
                container_id: container.into(),
            }
            .to_any(),
        ),
    }
}

async fn forward_reaches(daemon: Daemon) {
    let containerd = Containerd::start(daemon).unwrap_or_else(|e| panic!("{e}"));
    let grpc = Client::connect(containerd.grpc_address())
        .await
        .expect("grpc connect")
        .with_namespace("ctrd-fwd");
    let ttrpc_address = format!("unix://{}", containerd.ttrpc_address().display());
    let shim_side = events_ttrpc_async::EventsClient::new(
        ttrpc::r#async::Client::connect(&ttrpc_address)
            .await
            .expect("ttrpc connect"),
    );

    // containerd answers a subscription only with its first event: keep forwarding until the
    // subscription answers, which also proves forwarded events arrive.
    let mut subscription = tokio::spawn(async move {
        grpc.events()
            .subscribe(SubscribeRequest {
                filters: vec![format!("topic==\"{}\"", TaskOom::TOPIC)],
            })
            .await
    });
    let mut stream = None;
    for _ in 0..200 {
        shim_side
            .forward(
                ttrpc::context::with_duration(Duration::from_secs(5)),
                &ForwardRequest {
                    envelope: Some(envelope("c-oom")),
                },
            )
            .await
            .expect("forward");
        if let Ok(joined) = tokio::time::timeout(Duration::from_millis(50), &mut subscription).await
        {
            stream = Some(joined.expect("task").expect("subscribe").into_inner());
            break;
        }
    }
    let mut stream = stream.expect("containerd delivered a forwarded event");
    let got = tokio::time::timeout(Duration::from_secs(10), stream.message())
        .await
        .expect("event within 10 s")
        .expect("stream")
        .expect("an event");
    assert_eq!(got.namespace, "ctrd-fwd");
    assert_eq!(got.topic, "/tasks/oom");
    let oom = TaskOom::from_any(got.event.as_ref().expect("payload")).expect("decodes");
    assert_eq!(oom.container_id, "c-oom");
}

#[tokio::test]
async fn containerd_1_6() {
    forward_reaches(Daemon::Bookworm).await;
}

#[tokio::test]
async fn containerd_2_1() {
    forward_reaches(Daemon::Sid).await;
}

#[tokio::test]
async fn containerd_2_4() {
    forward_reaches(Daemon::Upstream).await;
}

#[tokio::test]
#[ignore = "needs containerd 1.7: scripts/setup-testbed.sh --with-1.7, then --ignored"]
async fn containerd_1_7() {
    forward_reaches(Daemon::Trixie).await;
}
