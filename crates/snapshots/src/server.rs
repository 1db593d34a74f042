//! The gRPC face of a [`Snapshotter`]: containerd's `Snapshots` service on our generated
//! bindings. Each call runs on tokio's blocking pool; `List` streams in batches.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use ctrd_api::containerd::services::snapshots::v1 as api;
use ctrd_api::containerd::types::Mount as ApiMount;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use crate::{Error, Filter, Info, Kind, Labels, Mount, Snapshotter};

/// How many snapshots one `List` response message carries.
const LIST_BATCH: usize = 100;

/// containerd's `Snapshots` gRPC service serving one [`Snapshotter`]. The `snapshotter`
/// field of requests is ignored: a proxy plugin serves exactly one snapshotter.
#[derive(Debug)]
pub struct SnapshotsService<S> {
    snapshotter: Arc<S>,
}

impl<S: Snapshotter> SnapshotsService<S> {
    /// Serves `snapshotter`.
    pub fn new(snapshotter: Arc<S>) -> SnapshotsService<S> {
        SnapshotsService { snapshotter }
    }

    /// The tonic service to add to a server.
    pub fn into_server(self) -> api::snapshots_server::SnapshotsServer<Self> {
        api::snapshots_server::SnapshotsServer::new(self)
    }

    /// Runs `call` (the `method` of the service) with the snapshotter on the blocking pool.
    /// At debug level, each call logs how long the snapshotter worked on it and how long it
    /// took in all, the hand-off to the blocking pool included.
    async fn run<T: Send + 'static>(
        &self,
        method: &'static str,
        call: impl FnOnce(&S) -> crate::Result<T> + Send + 'static,
    ) -> Result<T, Status> {
        let snapshotter = Arc::clone(&self.snapshotter);
        let start = Instant::now();
        let outcome = tokio::task::spawn_blocking(move || {
            let start = Instant::now();
            (call(&snapshotter), start.elapsed())
        })
        .await;
        match outcome {
            Ok((result, work)) => {
                served(method, work, start.elapsed());
                result.map_err(|e| {
                    tracing::debug!(method, error = %e.full_message(), "snapshot call failed");
                    Status::from(e)
                })
            }
            Err(e) => Err(Status::internal(format!("snapshot call panicked: {e}"))),
        }
    }
}

/// Logs (at debug level) that `method` was served: `work` in the snapshotter, `total` in the
/// handler (the hand-off to the blocking pool and back included).
fn served(method: &'static str, work: Duration, total: Duration) {
    tracing::debug!(
        method,
        work_us = u64::try_from(work.as_micros()).unwrap_or(u64::MAX),
        total_us = u64::try_from(total.as_micros()).unwrap_or(u64::MAX),
        "served"
    );
}

fn parent(parent: String) -> Option<String> {
    (!parent.is_empty()).then_some(parent)
}

fn mounts(mounts: Vec<Mount>) -> Vec<ApiMount> {
    mounts
        .into_iter()
        .map(|m| ApiMount {
            r#type: m.kind,
            source: m.source,
            target: m.target,
            options: m.options,
        })
        .collect()
}

fn timestamp(time: SystemTime) -> prost_types::Timestamp {
    let since = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    prost_types::Timestamp {
        seconds: i64::try_from(since.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(since.subsec_nanos()).unwrap_or(0),
    }
}

fn system_time(timestamp: Option<prost_types::Timestamp>) -> SystemTime {
    timestamp
        .and_then(|t| {
            let secs = u64::try_from(t.seconds).ok()?;
            let nanos = u32::try_from(t.nanos).ok()?;
            SystemTime::UNIX_EPOCH.checked_add(Duration::new(secs, nanos))
        })
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

/// A plain [`Info`] as the protobuf message.
pub fn info_to_api(info: Info) -> api::Info {
    let kind = match info.kind {
        Kind::View => api::Kind::View,
        Kind::Active => api::Kind::Active,
        Kind::Committed => api::Kind::Committed,
    };
    api::Info {
        name: info.name,
        parent: info.parent.unwrap_or_default(),
        kind: kind as i32,
        created_at: Some(timestamp(info.created_at)),
        updated_at: Some(timestamp(info.updated_at)),
        labels: info.labels,
    }
}

fn info_from_api(info: api::Info) -> Info {
    let kind = match api::Kind::try_from(info.kind) {
        Ok(api::Kind::View) => Kind::View,
        Ok(api::Kind::Committed) => Kind::Committed,
        _ => Kind::Active,
    };
    Info {
        name: info.name,
        parent: parent(info.parent),
        kind,
        labels: info.labels,
        created_at: system_time(info.created_at),
        updated_at: system_time(info.updated_at),
    }
}

#[tonic::async_trait]
impl<S: Snapshotter> api::snapshots_server::Snapshots for SnapshotsService<S> {
    async fn prepare(
        &self,
        request: Request<api::PrepareSnapshotRequest>,
    ) -> Result<Response<api::PrepareSnapshotResponse>, Status> {
        let r = request.into_inner();
        let parent = parent(r.parent);
        let labels: Labels = r.labels;
        let m = self
            .run("Prepare", move |s| {
                s.prepare(&r.key, parent.as_deref(), labels)
            })
            .await?;
        Ok(Response::new(api::PrepareSnapshotResponse {
            mounts: mounts(m),
        }))
    }

    async fn view(
        &self,
        request: Request<api::ViewSnapshotRequest>,
    ) -> Result<Response<api::ViewSnapshotResponse>, Status> {
        let r = request.into_inner();
        let parent = parent(r.parent);
        let m = self
            .run("View", move |s| s.view(&r.key, parent.as_deref(), r.labels))
            .await?;
        Ok(Response::new(api::ViewSnapshotResponse {
            mounts: mounts(m),
        }))
    }

    async fn mounts(
        &self,
        request: Request<api::MountsRequest>,
    ) -> Result<Response<api::MountsResponse>, Status> {
        let r = request.into_inner();
        let m = self.run("Mounts", move |s| s.mounts(&r.key)).await?;
        Ok(Response::new(api::MountsResponse { mounts: mounts(m) }))
    }

    async fn commit(
        &self,
        request: Request<api::CommitSnapshotRequest>,
    ) -> Result<Response<()>, Status> {
        let r = request.into_inner();
        // `parent` (containerd 2.2+): commit onto it instead of the prepare's parent.
        let rebase = parent(r.parent);
        self.run("Commit", move |s| {
            s.commit(&r.name, &r.key, rebase.as_deref(), r.labels)
        })
        .await?;
        Ok(Response::new(()))
    }

    async fn remove(
        &self,
        request: Request<api::RemoveSnapshotRequest>,
    ) -> Result<Response<()>, Status> {
        let r = request.into_inner();
        self.run("Remove", move |s| s.remove(&r.key)).await?;
        Ok(Response::new(()))
    }

    async fn stat(
        &self,
        request: Request<api::StatSnapshotRequest>,
    ) -> Result<Response<api::StatSnapshotResponse>, Status> {
        let r = request.into_inner();
        // A read of one record: cheaper on the calling thread than a hop to the blocking pool.
        let start = Instant::now();
        let info = self.snapshotter.stat(&r.key);
        let work = start.elapsed();
        served("Stat", work, work);
        let info = info.map_err(Status::from)?;
        Ok(Response::new(api::StatSnapshotResponse {
            info: Some(info_to_api(info)),
        }))
    }

    async fn update(
        &self,
        request: Request<api::UpdateSnapshotRequest>,
    ) -> Result<Response<api::UpdateSnapshotResponse>, Status> {
        let r = request.into_inner();
        let info = r
            .info
            .ok_or_else(|| Status::invalid_argument("update needs the snapshot's info"))?;
        // containerd sends UNKNOWN (0) when it does not name the kind; a number outside the
        // enum is a peer that speaks another protocol, not a kind to guess.
        if api::Kind::try_from(info.kind).is_err() {
            return Err(Status::invalid_argument(format!(
                "update of snapshot {:?}: kind {} is not a snapshot kind (0 unknown, 1 view, \
                 2 active, 3 committed)",
                info.name, info.kind
            )));
        }
        let paths = r.update_mask.map(|m| m.paths).unwrap_or_default();
        let info = info_from_api(info);
        let updated = self.run("Update", move |s| s.update(info, &paths)).await?;
        Ok(Response::new(api::UpdateSnapshotResponse {
            info: Some(info_to_api(updated)),
        }))
    }

    type ListStream = ReceiverStream<Result<api::ListSnapshotsResponse, Status>>;

    async fn list(
        &self,
        request: Request<api::ListSnapshotsRequest>,
    ) -> Result<Response<Self::ListStream>, Status> {
        let r = request.into_inner();
        let filter = Filter::parse_any(&r.filters)?;
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let snapshotter = Arc::clone(&self.snapshotter);
        let start = Instant::now();
        tokio::task::spawn_blocking(move || {
            let work = Instant::now();
            let mut batch = Vec::with_capacity(LIST_BATCH);
            let result = snapshotter.walk(&filter, &mut |info| {
                batch.push(info_to_api(info));
                if batch.len() == LIST_BATCH {
                    let info = std::mem::take(&mut batch);
                    if tx
                        .blocking_send(Ok(api::ListSnapshotsResponse { info }))
                        .is_err()
                    {
                        return Err(Error::Unsupported {
                            what: "listing to a closed stream".into(),
                        });
                    }
                }
                Ok(())
            });
            // The work includes waiting for a slow reader to take full batches.
            served("List", work.elapsed(), start.elapsed());
            let last = match result {
                Ok(()) if batch.is_empty() => return,
                Ok(()) => Ok(api::ListSnapshotsResponse { info: batch }),
                Err(e) => Err(Status::from(e)),
            };
            // The client may have gone; nothing to tell it then.
            let _ = tx.blocking_send(last);
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn usage(
        &self,
        request: Request<api::UsageRequest>,
    ) -> Result<Response<api::UsageResponse>, Status> {
        let r = request.into_inner();
        let usage = self.run("Usage", move |s| s.usage(&r.key)).await?;
        Ok(Response::new(api::UsageResponse {
            size: usage.size,
            inodes: usage.inodes,
        }))
    }

    async fn cleanup(&self, _: Request<api::CleanupRequest>) -> Result<Response<()>, Status> {
        self.run("Cleanup", |s| s.cleanup()).await?;
        Ok(Response::new(()))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::{Result, Usage};
    use api::snapshots_server::Snapshots;

    /// Records the updates that reach it; every other call is unreachable in these tests.
    #[derive(Default)]
    struct Recorder {
        updated: Mutex<Vec<Info>>,
    }

    fn unused<T>(key: &str) -> Result<T> {
        Err(Error::NotFound { key: key.into() })
    }

    impl Snapshotter for Recorder {
        fn stat(&self, key: &str) -> Result<Info> {
            unused(key)
        }
        fn update(&self, info: Info, _: &[String]) -> Result<Info> {
            self.updated
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(info.clone());
            Ok(info)
        }
        fn usage(&self, key: &str) -> Result<Usage> {
            unused(key)
        }
        fn mounts(&self, key: &str) -> Result<Vec<Mount>> {
            unused(key)
        }
        fn prepare(&self, key: &str, _: Option<&str>, _: Labels) -> Result<Vec<Mount>> {
            unused(key)
        }
        fn view(&self, key: &str, _: Option<&str>, _: Labels) -> Result<Vec<Mount>> {
            unused(key)
        }
        fn commit(&self, _: &str, key: &str, _: Option<&str>, _: Labels) -> Result<()> {
            unused(key)
        }
        fn remove(&self, key: &str) -> Result<()> {
            unused(key)
        }
        fn walk(&self, _: &Filter, _: &mut dyn FnMut(Info) -> Result<()>) -> Result<()> {
            Ok(())
        }
        fn cleanup(&self) -> Result<()> {
            Ok(())
        }
    }

    fn update(kind: i32) -> api::UpdateSnapshotRequest {
        api::UpdateSnapshotRequest {
            info: Some(api::Info {
                name: "default/1/layer".into(),
                kind,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn update_refuses_kinds_outside_the_enum() {
        let recorder = Arc::new(Recorder::default());
        let service = SnapshotsService::new(Arc::clone(&recorder));
        for kind in [4, 99, -1, i32::MAX] {
            let status = service
                .update(Request::new(update(kind)))
                .await
                .expect_err("an unknown kind");
            assert_eq!(status.code(), tonic::Code::InvalidArgument, "kind {kind}");
            assert!(
                status
                    .message()
                    .contains(&format!("kind {kind} is not a snapshot kind")),
                "{}",
                status.message()
            );
        }
        assert!(
            recorder
                .updated
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .is_empty(),
            "no refused update reached the snapshotter"
        );
        // containerd's own updates name no kind (UNKNOWN) or the snapshot's own.
        for kind in [0, 1, 2, 3] {
            service
                .update(Request::new(update(kind)))
                .await
                .unwrap_or_else(|e| panic!("kind {kind}: {e}"));
        }
        assert_eq!(
            recorder
                .updated
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .len(),
            4
        );
    }
}
