//! The generated gRPC clients against real containerd daemons: every message we send is
//! accepted and every answer decodes, on each containerd generation.

use std::collections::HashMap;
use std::time::Duration;

use ctrd_api::TypeUrl;
use ctrd_api::containerd::events::NamespaceCreate;
use ctrd_api::containerd::services::containers::v1 as containers;
use ctrd_api::containerd::services::events::v1::{PublishRequest, SubscribeRequest};
use ctrd_api::containerd::services::introspection::v1::PluginsRequest;
use ctrd_api::containerd::services::namespaces::v1 as namespaces;
use ctrd_api::containerd::types::Envelope;
use ctrd_client::Client;
use ctrd_testbed::{Containerd, Daemon};

/// The type URL containerd gives OCI runtime specs.
const SPEC_TYPE_URL: &str = "types.containerd.io/opencontainers/runtime-spec/1/Spec";

/// Topic of the marker events that prove a subscription is live.
const MARKER_TOPIC: &str = "/ctrd-test/marker";

/// Subscribes to namespace creations and markers, returning once the stream delivers.
async fn subscribe_live(client: &Client) -> tonic::Streaming<Envelope> {
    let subscriber = client.clone();
    let mut subscription = tokio::spawn(async move {
        subscriber
            .events()
            .subscribe(SubscribeRequest {
                filters: vec![
                    format!("topic==\"{MARKER_TOPIC}\""),
                    "topic==\"/namespaces/create\"".into(),
                ],
            })
            .await
    });
    for _ in 0..200 {
        client
            .events()
            .publish(PublishRequest {
                topic: MARKER_TOPIC.into(),
                event: Some(NamespaceCreate::default().to_any()),
            })
            .await
            .expect("publish a marker");
        if let Ok(joined) = tokio::time::timeout(Duration::from_millis(50), &mut subscription).await
        {
            let mut stream = joined
                .expect("subscriber task")
                .expect("subscribe")
                .into_inner();
            // Drain the markers already queued.
            while let Ok(Ok(Some(e))) =
                tokio::time::timeout(Duration::from_millis(100), stream.message()).await
            {
                assert_eq!(e.topic, MARKER_TOPIC);
            }
            return stream;
        }
    }
    panic!("containerd never answered an events subscription");
}

async fn exercise(daemon: Daemon) {
    tokio::time::timeout(Duration::from_secs(120), exercise_inner(daemon))
        .await
        .unwrap_or_else(|_| panic!("containerd {} scenario took over 120 s", daemon.version()));
}

async fn exercise_inner(daemon: Daemon) {
    let containerd = Containerd::start(daemon).unwrap_or_else(|e| panic!("{e}"));
    let client = Client::connect(containerd.grpc_address())
        .await
        .expect("connect")
        .with_namespace("ctrd-wire");

    // Version.
    let version = client
        .version()
        .version(())
        .await
        .expect("version")
        .into_inner();
    assert!(
        version.version.starts_with(daemon.version()),
        "containerd {} reported version {:?}",
        daemon.version(),
        version.version
    );

    // Events: containerd answers a subscription only with its first event, so subscribe in a
    // task and publish markers until one arrives; then the subscription is surely live.
    let mut events = subscribe_live(&client).await;

    // Namespaces: create with labels, get, list, delete.
    let labels = HashMap::from([("ctrd.test/owner".to_owned(), "wire".to_owned())]);
    client
        .namespaces()
        .create(namespaces::CreateNamespaceRequest {
            namespace: Some(namespaces::Namespace {
                name: "ctrd-wire".into(),
                labels: labels.clone(),
            }),
        })
        .await
        .expect("create namespace");
    let got = client
        .namespaces()
        .get(namespaces::GetNamespaceRequest {
            name: "ctrd-wire".into(),
        })
        .await
        .expect("get namespace")
        .into_inner()
        .namespace
        .expect("namespace in response");
    assert_eq!(got.labels, labels);

    let envelope = loop {
        let envelope = tokio::time::timeout(Duration::from_secs(10), events.message())
            .await
            .expect("namespace event within 10 s")
            .expect("event stream")
            .expect("an event");
        if envelope.topic != MARKER_TOPIC {
            break envelope;
        }
    };
    assert_eq!(envelope.topic, <NamespaceCreate as ctrd_api::Event>::TOPIC);
    assert_eq!(envelope.namespace, "ctrd-wire");
    let event = NamespaceCreate::from_any(envelope.event.as_ref().expect("event payload"))
        .expect("event decodes as NamespaceCreate");
    assert_eq!(event.name, "ctrd-wire");
    assert_eq!(event.labels, labels);

    // Containers: create, list, get, delete.
    let spec = ctrd_api::prost_types::Any {
        type_url: SPEC_TYPE_URL.into(),
        value: br#"{"ociVersion":"1.0.2","process":{"args":["/bin/true"],"cwd":"/"},"root":{"path":"rootfs"}}"#.to_vec(),
    };
    let container = containers::Container {
        id: "wire-1".into(),
        labels: HashMap::from([("ctrd.test/kind".to_owned(), "wire".to_owned())]),
        image: "example.invalid/none:latest".into(),
        runtime: Some(containers::container::Runtime {
            name: "io.containerd.runc.v2".into(),
            options: None,
        }),
        spec: Some(spec.clone()),
        ..Default::default()
    };
    let created = client
        .containers()
        .create(containers::CreateContainerRequest {
            container: Some(container.clone()),
        })
        .await
        .expect("create container")
        .into_inner()
        .container
        .expect("container in response");
    assert_eq!(created.id, "wire-1");
    assert!(created.created_at.is_some(), "containerd stamps created_at");

    let listed = client
        .containers()
        .list(containers::ListContainersRequest { filters: vec![] })
        .await
        .expect("list containers")
        .into_inner()
        .containers;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].labels, container.labels);
    assert_eq!(listed[0].spec.as_ref(), Some(&spec));

    let status = client
        .containers()
        .get(containers::GetContainerRequest { id: "nope".into() })
        .await
        .expect_err("an unknown container is an error");
    assert_eq!(status.code(), tonic::Code::NotFound);

    client
        .containers()
        .delete(containers::DeleteContainerRequest {
            id: "wire-1".into(),
        })
        .await
        .expect("delete container");
    let listed = client
        .containers()
        .list(containers::ListContainersRequest { filters: vec![] })
        .await
        .expect("list containers")
        .into_inner()
        .containers;
    assert!(listed.is_empty());

    client
        .namespaces()
        .delete(namespaces::DeleteNamespaceRequest {
            name: "ctrd-wire".into(),
        })
        .await
        .expect("delete namespace");

    // Introspection: the plugin list decodes, and holds what every containerd has.
    let plugins = client
        .introspection()
        .plugins(PluginsRequest { filters: vec![] })
        .await
        .expect("plugins")
        .into_inner()
        .plugins;
    assert!(
        plugins
            .iter()
            .any(|p| p.r#type == "io.containerd.snapshotter.v1" && p.id == "overlayfs"),
        "overlayfs snapshotter listed"
    );
    assert!(
        plugins.iter().any(|p| p.id == "containers"),
        "containers service listed"
    );
}

#[tokio::test]
async fn containerd_1_6() {
    exercise(Daemon::Bookworm).await;
}

#[tokio::test]
async fn containerd_2_1() {
    exercise(Daemon::Sid).await;
}

#[tokio::test]
#[ignore = "needs containerd 1.7: scripts/setup-testbed.sh --with-1.7, then --ignored"]
async fn containerd_1_7() {
    exercise(Daemon::Trixie).await;
}
