//! containerd's transfer service (containerd 2.x): pulls the daemon carries out itself, with
//! progress and registry credentials passed over its streaming service.
//!
//! A stream is registered by sending `StreamInit { id }` as the first message of a
//! `Streaming.Stream` call; containerd answers with one empty message once the id is known,
//! and the transfer request then names the stream by its id. Progress flows from the daemon
//! as `containerd.types.transfer.Progress`; credentials are asked for with an `AuthRequest`
//! and answered with an `AuthResponse`.

mod import;

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use ctrd_api::TypeUrl;
use ctrd_api::containerd::services::streaming::v1::StreamInit;
use ctrd_api::containerd::services::transfer::v1 as api;
use ctrd_api::containerd::types::Platform as ApiPlatform;
use ctrd_api::containerd::types::transfer as types;
use ctrd_api::prost_types::Any;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;

use crate::image::oci::Platform;
use crate::image::registry::Reference;
use crate::{Client, Credentials, Error, ImportOptions, Progress, PullOptions};

/// Which way an import or pull goes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Route {
    /// containerd's transfer service where the daemon has it (2.x) and it can serve the
    /// request; this client's own path otherwise.
    #[default]
    Auto,
    /// This client fetches the blobs and writes content, images and snapshots itself, on any
    /// containerd (`ctr`'s `--local`).
    Local,
    /// containerd's transfer service, or an error where the daemon or the request rules it
    /// out.
    Transfer,
}

/// A stream registered with containerd's streaming service: what we send and what it sends.
pub(crate) struct Stream {
    pub(crate) id: String,
    pub(crate) outbound: mpsc::Sender<Any>,
    pub(crate) inbound: tonic::Streaming<Any>,
}

/// A stream id no other client uses at the same time.
pub(crate) fn stream_id(purpose: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    format!("ctrd-{purpose}-{}-{nanos}", std::process::id())
}

/// Why the transfer service cannot serve a pull, if it cannot (then [`Route::Auto`] pulls
/// locally).
pub(crate) fn transfer_refuses(pull: &PullOptions) -> Option<&'static str> {
    if pull.ca_file.is_some() {
        // The daemon reads CA files from its own hosts folders, not from the client.
        return Some("a CA file is given (the daemon trusts only its own certs.d)");
    }
    // Its registry options (RegistryResolver) have no TLS fields either.
    if pull.client_cert.is_some() || pull.client_key.is_some() {
        return Some(
            "a client certificate is given (the daemon reads those only from its own certs.d)",
        );
    }
    if pull.skip_verify {
        return Some("--skip-verify is given (the daemon takes that only from its own hosts.toml)");
    }
    None
}

impl Client {
    /// Registers a stream for `purpose` with the streaming service.
    pub(crate) async fn open_stream(&self, purpose: &str) -> Result<Stream, Error> {
        let id = stream_id(purpose);
        let (outbound, receiver) = mpsc::channel(16);
        let init = StreamInit { id: id.clone() }.to_any();
        // The receiver is alive: it is handed to the call below.
        let _ = outbound.send(init).await;
        let object = format!("stream {id}");
        let mut inbound = self
            .unary("streaming.Stream", &object, async {
                self.streaming().stream(ReceiverStream::new(receiver)).await
            })
            .await?;
        // containerd answers once the id is registered.
        match inbound.message().await {
            Ok(Some(_)) => Ok(Stream {
                id,
                outbound,
                inbound,
            }),
            Ok(None) => Err(Error::call(
                "streaming.Stream",
                object,
                tonic::Status::unavailable("closed before registering the stream"),
            )),
            Err(status) => Err(Error::call("streaming.Stream", object, status)),
        }
    }

    /// Pulls `reference` through the transfer service as `pull` says; `Ok(false)` when the
    /// daemon has no transfer service (containerd 1.x), so the caller may pull locally.
    pub(crate) async fn transfer_pull(
        &self,
        reference: &str,
        pull: &PullOptions,
    ) -> Result<bool, Error> {
        // A malformed reference gets the same error as on the local path.
        Reference::parse(reference)?;
        let progress = match self.open_stream("progress").await {
            Ok(stream) => stream,
            Err(e) if e.code() == Some(tonic::Code::Unimplemented) => return Ok(false),
            Err(e) => return Err(e),
        };
        let progress_id = progress.id.clone();
        let (progress_keep, progress_task) = forward_progress(progress, pull.import.clone());
        let auth = match &pull.credentials {
            Some(credentials) => {
                let stream = self.open_stream("auth").await?;
                let id = stream.id.clone();
                Some((id, answer_credentials(stream, credentials.clone())))
            }
            None => None,
        };
        // Without --plain-http the daemon's own rules pick the scheme (its certs.d; for
        // localhost with a port, HTTPS without verification, then plain HTTP).
        let scheme = if pull.plain_http { "http" } else { "" };
        let platform = api_platform(&pull.platform.clone().unwrap_or_else(Platform::host));
        let source = types::OciRegistry {
            reference: reference.to_owned(),
            resolver: Some(types::RegistryResolver {
                auth_stream: auth.as_ref().map(|(id, _)| id.clone()).unwrap_or_default(),
                default_scheme: scheme.to_owned(),
                ..Default::default()
            }),
        };
        let destination = types::ImageStore {
            name: reference.to_owned(),
            platforms: vec![platform.clone()],
            unpacks: unpacks(&pull.import, &platform),
            ..Default::default()
        };
        let result = match self
            .run_transfer(
                source.to_any(),
                destination.to_any(),
                progress_id,
                reference,
            )
            .await
        {
            // What the daemon met at the registry (not found, refused credentials, a
            // failing server) is a registry error, as the local path reports it.
            Err(Error::Call {
                code:
                    tonic::Code::NotFound
                    | tonic::Code::Unknown
                    | tonic::Code::Unauthenticated
                    | tonic::Code::PermissionDenied,
                message,
                ..
            }) => Err(Error::Registry {
                reference: reference.to_owned(),
                reason: format!("containerd's transfer service: {}", one_line(&message)),
            }),
            other => other,
        };
        drop(progress_keep);
        if let Some((_, task)) = auth {
            task.abort();
        }
        // The daemon closes the progress stream when the transfer ends.
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), progress_task).await;
        result.map(|()| true)
    }

    /// One `Transfer` call (no per-call timeout: it lasts as long as the transfer); its
    /// error as the daemon gave it.
    pub(crate) async fn run_transfer(
        &self,
        source: Any,
        destination: Any,
        progress_stream: String,
        object: &str,
    ) -> Result<(), Error> {
        let request = api::TransferRequest {
            source: Some(source),
            destination: Some(destination),
            options: Some(api::TransferOptions { progress_stream }),
        };
        self.clone()
            .with_call_timeout(None)
            .unary("transfer.Transfer", object, async {
                self.transfer().transfer(request).await
            })
            .await
            .map(|_| ())
    }

    /// Whether a pull goes to the transfer service: every condition but the daemon's
    /// version, which the first call finds out.
    pub(crate) fn wants_transfer(reference: &str, pull: &PullOptions) -> Result<bool, Error> {
        match (pull.import.route, transfer_refuses(pull)) {
            (Route::Local, _) | (Route::Auto, Some(_)) => Ok(false),
            (Route::Auto, None) | (Route::Transfer, None) => Ok(true),
            (Route::Transfer, Some(reason)) => Err(Error::Registry {
                reference: reference.to_owned(),
                reason: format!("the transfer service cannot serve this pull: {reason}"),
            }),
        }
    }
}

/// Sends the daemon's progress reports to `options`' progress channel, as [`Progress`]; the
/// sender returned keeps the stream open until it is dropped. The task ends with the names of
/// the images the daemon reported saved.
pub(crate) fn forward_progress(
    stream: Stream,
    options: ImportOptions,
) -> (mpsc::Sender<Any>, JoinHandle<Vec<String>>) {
    let Stream {
        outbound,
        mut inbound,
        ..
    } = stream;
    let task = tokio::spawn(async move {
        let mut sizes: HashMap<String, u64> = HashMap::new();
        let mut saved = Vec::new();
        while let Ok(Some(any)) = inbound.message().await {
            let Ok(report) = types::Progress::from_any(&any) else {
                continue;
            };
            if report.event == "saved" && !report.name.is_empty() {
                if !saved.contains(&report.name) {
                    options.report(Progress::Image {
                        name: report.name.clone(),
                    });
                    saved.push(report.name);
                }
                continue;
            }
            let Some(desc) = report.desc else {
                continue;
            };
            let (Ok(total), Ok(done)) =
                (u64::try_from(report.total), u64::try_from(report.progress))
            else {
                continue;
            };
            if total == 0 {
                continue;
            }
            if sizes.insert(desc.digest.clone(), total).is_none() {
                options.report(Progress::Total {
                    bytes: sizes.values().sum(),
                });
            }
            options.report(Progress::Blob {
                digest: desc.digest,
                written: done.min(total),
                size: total,
            });
        }
        saved
    });
    (outbound, task)
}

/// Answers the daemon's credential requests on `stream` with `credentials`.
fn answer_credentials(stream: Stream, credentials: Credentials) -> JoinHandle<()> {
    let Stream {
        outbound,
        mut inbound,
        ..
    } = stream;
    tokio::spawn(async move {
        while let Ok(Some(any)) = inbound.message().await {
            if types::AuthRequest::from_any(&any).is_err() {
                continue;
            }
            let answer = types::AuthResponse {
                auth_type: types::AuthType::Credentials as i32,
                username: credentials.user.clone(),
                secret: credentials.password.clone(),
                expire_at: None,
            };
            if outbound.send(answer.to_any()).await.is_err() {
                break;
            }
        }
    })
}

/// `text` on one line (an error line stays one line).
pub(crate) fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The destination's unpack into the snapshotter `options` names, if it names one.
pub(crate) fn unpacks(
    options: &ImportOptions,
    platform: &ApiPlatform,
) -> Vec<types::UnpackConfiguration> {
    options
        .unpack
        .iter()
        .map(|snapshotter| types::UnpackConfiguration {
            platform: Some(platform.clone()),
            snapshotter: snapshotter.clone(),
        })
        .collect()
}

pub(crate) fn api_platform(platform: &Platform) -> ApiPlatform {
    ApiPlatform {
        os: platform.os.clone(),
        architecture: platform.architecture.clone(),
        variant: platform.variant.clone().unwrap_or_default(),
        ..Default::default()
    }
}
