//! The generated ttrpc task service, server and client, over a real unix socket: requests and
//! answers cross the wire intact, methods a shim leaves out answer UNIMPLEMENTED, and a
//! malformed payload gets INVALID_ARGUMENT instead of reaching the handler.

use std::time::Duration;

use ctrd_api::containerd::task::v2 as task;
use ctrd_api::containerd::task::v3 as task3;
use ctrd_api::containerd::types::Mount;
use ctrd_api::containerd::v1::types::Status as TaskStatus;
use ctrd_api::prost::Message;
use ctrd_api::prost_types::Timestamp;
use ctrd_api::ttrpc::{self, Code};

/// A toy shim that knows one task, `known`.
struct Shim;

fn lookup(id: &str) -> ttrpc::Result<u32> {
    if id == "known" {
        Ok(4242)
    } else {
        Err(ttrpc::Error::RpcStatus(ttrpc::get_status(
            Code::NOT_FOUND,
            format!("task {id} not found"),
        )))
    }
}

fn state_of(id: String) -> ttrpc::Result<task::StateResponse> {
    let pid = lookup(&id)?;
    Ok(task::StateResponse {
        id,
        pid,
        status: TaskStatus::Running as i32,
        bundle: "/run/bundle".into(),
        exited_at: Some(Timestamp {
            seconds: 1_700_000_000,
            nanos: 5,
        }),
        ..Default::default()
    })
}

fn created(req: task::CreateTaskRequest) -> task::CreateTaskResponse {
    // Echo the rootfs back through the pid so the test sees the mounts arrived intact.
    let pid = req
        .rootfs
        .iter()
        .map(|m| m.options.len() as u32)
        .sum::<u32>();
    task::CreateTaskResponse { pid }
}

#[ctrd_macros::service(ctrd_api::containerd::task::v2::task_ttrpc_async::Task)]
impl task::task_ttrpc_async::Task for Shim {
    async fn state(
        &self,
        _ctx: &ttrpc::r#async::TtrpcContext,
        req: task::StateRequest,
    ) -> ttrpc::Result<task::StateResponse> {
        // `?` inside the instrumented body must keep working.
        let _pid = lookup(&req.id)?;
        state_of(req.id)
    }

    async fn create(
        &self,
        _ctx: &ttrpc::r#async::TtrpcContext,
        req: task::CreateTaskRequest,
    ) -> ttrpc::Result<task::CreateTaskResponse> {
        Ok(created(req))
    }
}

#[ctrd_macros::service(
    ctrd_api::containerd::task::v2::task_ttrpc::Task,
    register = into_sync_task_service
)]
impl task::task_ttrpc::Task for Shim {
    fn state(
        &self,
        _ctx: &ctrd_api::CallContext,
        req: task::StateRequest,
    ) -> ttrpc::Result<task::StateResponse> {
        state_of(req.id)
    }

    fn create(
        &self,
        _ctx: &ctrd_api::CallContext,
        req: task::CreateTaskRequest,
    ) -> ttrpc::Result<task::CreateTaskResponse> {
        Ok(created(req))
    }
}

struct ShimV3;

#[ctrd_macros::service(ctrd_api::containerd::task::v3::task_ttrpc_async::Task)]
impl task3::task_ttrpc_async::Task for ShimV3 {
    async fn connect(
        &self,
        _ctx: &ttrpc::r#async::TtrpcContext,
        req: task3::ConnectRequest,
    ) -> ttrpc::Result<task3::ConnectResponse> {
        Ok(task3::ConnectResponse {
            shim_pid: 1,
            task_pid: lookup(&req.id)?,
            version: "3".into(),
        })
    }
}

fn create_request() -> task::CreateTaskRequest {
    task::CreateTaskRequest {
        id: "known".into(),
        bundle: "/run/bundle".into(),
        rootfs: vec![
            Mount {
                r#type: "overlay".into(),
                source: "overlay".into(),
                target: String::new(),
                options: vec![
                    "lowerdir=/a".into(),
                    "upperdir=/b".into(),
                    "workdir=/c".into(),
                ],
            },
            Mount {
                r#type: "bind".into(),
                source: "/src".into(),
                target: "/dst".into(),
                options: vec!["rbind".into()],
            },
        ],
        ..Default::default()
    }
}

fn ctx() -> ttrpc::context::Context {
    ttrpc::context::with_duration(Duration::from_secs(5))
}

fn status_code(result: ttrpc::Result<impl std::fmt::Debug>) -> Code {
    match result {
        Err(ttrpc::Error::RpcStatus(s)) => s.code(),
        other => panic!("expected a status error, got {other:?}"),
    }
}

/// A request whose payload is not a valid `StateRequest`.
fn malformed(service: &str) -> ttrpc::Request {
    let mut req = ttrpc::Request::new();
    req.service = service.into();
    req.method = "State".into();
    req.timeout_nano = 5_000_000_000;
    // Field 1 (id, a string) claims 100 bytes but carries 1.
    req.payload = vec![0x0a, 100, b'x'];
    assert!(task::StateRequest::decode(req.payload.as_slice()).is_err());
    req
}

#[tokio::test]
async fn async_server_and_client() {
    let dir = tempfile::tempdir().expect("tempdir");
    let address = format!("unix://{}", dir.path().join("shim.sock").display());
    let mut services = Shim.into_task_service();
    services.extend(ShimV3.into_task_service());
    let mut server = ttrpc::r#async::Server::new()
        .bind(&address)
        .expect("bind")
        .register_service(services);
    server.start().await.expect("start");

    let raw = ttrpc::r#async::Client::connect(&address)
        .await
        .expect("connect");
    let client = task::task_ttrpc_async::TaskClient::new(raw.clone());

    let state = client
        .state(
            ctx(),
            &task::StateRequest {
                id: "known".into(),
                exec_id: String::new(),
            },
        )
        .await
        .expect("state");
    assert_eq!(state, state_of("known".into()).expect("known task"));

    let created = client
        .create(ctx(), &create_request())
        .await
        .expect("create");
    assert_eq!(created.pid, 4, "all four mount options arrived");

    let missing = client
        .state(
            ctx(),
            &task::StateRequest {
                id: "other".into(),
                exec_id: String::new(),
            },
        )
        .await;
    assert_eq!(status_code(missing), Code::NOT_FOUND);

    let pids = client
        .pids(ctx(), &task::PidsRequest { id: "known".into() })
        .await;
    assert_eq!(status_code(pids), Code::UNIMPLEMENTED);

    let bad = raw.request(malformed("containerd.task.v2.Task")).await;
    assert_eq!(status_code(bad), Code::INVALID_ARGUMENT);

    let v3 = task3::task_ttrpc_async::TaskClient::new(raw);
    let connected = v3
        .connect(ctx(), &task3::ConnectRequest { id: "known".into() })
        .await
        .expect("v3 connect");
    assert_eq!(
        (connected.task_pid, connected.version.as_str()),
        (4242, "3")
    );
    let v3_state = v3
        .state(
            ctx(),
            &task3::StateRequest {
                id: "known".into(),
                exec_id: String::new(),
            },
        )
        .await;
    assert_eq!(status_code(v3_state), Code::UNIMPLEMENTED);

    server.shutdown().await.expect("shutdown");
}

#[test]
fn sync_server_and_client() {
    let dir = tempfile::tempdir().expect("tempdir");
    let address = format!("unix://{}", dir.path().join("shim.sock").display());
    let mut server = ttrpc::Server::new()
        .bind(&address)
        .expect("bind")
        .register_service(Shim.into_sync_task_service());
    server.start().expect("start");

    let raw = ttrpc::Client::connect(&address).expect("connect");
    let client = task::task_ttrpc::TaskClient::new(raw.clone());
    let state = client
        .state(
            ctx(),
            &task::StateRequest {
                id: "known".into(),
                exec_id: String::new(),
            },
        )
        .expect("state");
    assert_eq!(state, state_of("known".into()).expect("known task"));
    let created = client.create(ctx(), &create_request()).expect("create");
    assert_eq!(created.pid, 4);
    assert_eq!(
        status_code(client.kill(ctx(), &task::KillRequest::default())),
        Code::UNIMPLEMENTED
    );
    assert_eq!(
        status_code(raw.request(malformed("containerd.task.v2.Task"))),
        Code::INVALID_ARGUMENT
    );
    server.shutdown();
}

/// A synchronous implementation served by the asynchronous server through `FromSync`.
#[tokio::test(flavor = "current_thread")]
async fn sync_implementation_on_the_async_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let address = format!("unix://{}", dir.path().join("shim.sock").display());
    let adapter = task::task_ttrpc_async::FromSync(std::sync::Arc::new(Shim));
    let mut server = ttrpc::r#async::Server::new()
        .bind(&address)
        .expect("bind")
        .register_service(task::task_ttrpc_async::create_task(std::sync::Arc::new(
            adapter,
        )));
    server.start().await.expect("start");
    let client = task::task_ttrpc_async::TaskClient::new(
        ttrpc::r#async::Client::connect(&address)
            .await
            .expect("connect"),
    );
    let mut with_metadata = ctx();
    with_metadata.add("who".into(), "test".into());
    let state = client
        .state(
            with_metadata,
            &task::StateRequest {
                id: "known".into(),
                exec_id: String::new(),
            },
        )
        .await
        .expect("state through the adapter");
    assert_eq!(state, state_of("known".into()).expect("known task"));
    let pids = client
        .pids(ctx(), &task::PidsRequest { id: "known".into() })
        .await;
    assert_eq!(
        status_code(pids),
        Code::UNIMPLEMENTED,
        "defaults come from the sync impl"
    );
    server.shutdown().await.expect("shutdown");
}
