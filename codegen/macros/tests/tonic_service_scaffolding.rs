//! `#[service]` on tonic services, served over a unix socket and called with `ctrd-client`:
//! written methods answer (inside an `rpc` span), left-out ones answer UNIMPLEMENTED, including
//! server-streaming and bidirectional ones, whose stream types the macro supplies.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ctrd_api::containerd::services::content::v1::content_server;
use ctrd_api::containerd::services::content::v1::{WriteAction, WriteContentRequest};
use ctrd_api::containerd::services::events::v1::{SubscribeRequest, events_server};
use ctrd_api::containerd::services::namespaces::v1::{
    GetNamespaceRequest, GetNamespaceResponse, ListNamespacesRequest, ListNamespacesResponse,
    Namespace, UpdateNamespaceRequest, namespaces_server,
};
use tonic::{Code, Request, Response, Status};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::Registry;

/// A namespace store holding one namespace, `known`.
struct Namespaces;

fn find(name: &str) -> Result<Namespace, Status> {
    if name == "known" {
        Ok(Namespace {
            name: name.into(),
            labels: HashMap::from([("k".into(), "v".into())]),
        })
    } else {
        Err(Status::not_found(format!("namespace {name}")))
    }
}

#[ctrd_macros::service(
    ctrd_api::containerd::services::namespaces::v1::namespaces_server::Namespaces
)]
impl namespaces_server::Namespaces for Namespaces {
    async fn get(
        &self,
        request: Request<GetNamespaceRequest>,
    ) -> Result<Response<GetNamespaceResponse>, Status> {
        let namespace = find(&request.into_inner().name)?;
        Ok(Response::new(GetNamespaceResponse {
            namespace: Some(namespace),
        }))
    }

    async fn list(
        &self,
        _request: Request<ListNamespacesRequest>,
    ) -> Result<Response<ListNamespacesResponse>, Status> {
        Ok(Response::new(ListNamespacesResponse {
            namespaces: vec![find("known")?],
        }))
    }
}

/// An events service with nothing written: every method comes from the macro.
struct NoEvents;

#[ctrd_macros::service(ctrd_api::containerd::services::events::v1::events_server::Events)]
impl events_server::Events for NoEvents {}

/// A content store with nothing written (it has server-streaming and bidirectional methods).
struct NoContent;

#[ctrd_macros::service(ctrd_api::containerd::services::content::v1::content_server::Content)]
impl content_server::Content for NoContent {}

/// Records the fields of every `rpc` span.
#[derive(Clone, Default)]
struct Spans(Arc<Mutex<Vec<String>>>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Spans {
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        _id: &tracing::span::Id,
        _ctx: Context<'_, S>,
    ) {
        struct Fields(String);
        impl tracing::field::Visit for Fields {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                self.0.push_str(&format!("{}={:?} ", field.name(), value));
            }
        }
        if attrs.metadata().name() == "rpc" {
            let mut fields = Fields(String::new());
            attrs.record(&mut fields);
            if let Ok(mut spans) = self.0.lock() {
                spans.push(fields.0.trim_end().to_owned());
            }
        }
    }
}

#[tokio::test(flavor = "current_thread")]
async fn written_methods_answer_and_the_rest_are_unimplemented() {
    let spans = Spans::default();
    let _guard = tracing::subscriber::set_default(Registry::default().with(spans.clone()));

    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("grpc.sock");
    let listener = tokio::net::UnixListener::bind(&socket).expect("bind");
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(Namespaces.into_namespaces_server())
            .add_service(NoEvents.into_events_server())
            .add_service(NoContent.into_content_server())
            .serve_with_incoming(tokio_stream::wrappers::UnixListenerStream::new(listener)),
    );

    let client = ctrd_client::Client::connect(&socket)
        .await
        .expect("connect");

    let got = client
        .namespaces()
        .get(GetNamespaceRequest {
            name: "known".into(),
        })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(got.namespace, Some(find("known").expect("known")));

    let missing = client
        .namespaces()
        .get(GetNamespaceRequest {
            name: "other".into(),
        })
        .await
        .expect_err("unknown namespace");
    assert_eq!(missing.code(), Code::NotFound);

    let listed = client
        .namespaces()
        .list(ListNamespacesRequest::default())
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.namespaces.len(), 1);

    let update = client
        .namespaces()
        .update(UpdateNamespaceRequest::default())
        .await
        .expect_err("update is not written");
    assert_eq!(update.code(), Code::Unimplemented);
    assert!(
        update
            .message()
            .contains("containerd.services.namespaces.v1.Namespaces/Update"),
        "{}",
        update.message()
    );

    let subscribe = client
        .events()
        .subscribe(SubscribeRequest::default())
        .await
        .expect_err("server streaming, not written");
    assert_eq!(subscribe.code(), Code::Unimplemented);

    let write = client
        .content()
        .write(tokio_stream::iter([WriteContentRequest {
            action: WriteAction::Stat as i32,
            r#ref: "x".into(),
            ..Default::default()
        }]))
        .await
        .expect_err("bidirectional, not written");
    assert_eq!(write.code(), Code::Unimplemented);

    server.abort();
    let spans = spans.0.lock().map(|s| s.clone()).unwrap_or_default();
    let namespaces = "service=\"containerd.services.namespaces.v1.Namespaces\"";
    assert_eq!(
        spans,
        vec![
            format!("{namespaces} method=\"Get\""),
            format!("{namespaces} method=\"Get\""),
            format!("{namespaces} method=\"List\""),
        ],
        "one span per call of a written method"
    );
}
