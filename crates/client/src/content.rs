//! The content store: resumable, verified writes; reads; listing; deletion.

use std::collections::HashMap;
use std::future::Future;
use std::io::SeekFrom;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use ctrd_api::containerd::services::content::v1::{
    self as content, WriteAction, WriteContentRequest,
};
use ctrd_api::prost_types::FieldMask;
use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::{Client, Error};

/// How much data one write message carries.
const CHUNK: usize = 1 << 20;

/// How many times a write from a [`BlobSource::Reopen`] source is resumed after its source
/// broke off.
const RESUMES: u32 = 5;

/// A readable source of blob bytes.
pub type BlobReader = Box<dyn tokio::io::AsyncRead + Send + Unpin>;

/// Opens a source at a byte offset: what [`BlobSource::Reopen`] holds.
pub type OpenAt = Arc<
    dyn Fn(u64) -> Pin<Box<dyn Future<Output = Result<BlobReader, Error>> + Send>> + Send + Sync,
>;

/// Where the bytes of a blob come from.
pub enum BlobSource {
    /// Bytes in memory.
    Bytes(Vec<u8>),
    /// A range of a file: `len` bytes from `offset`. Resuming a write re-reads the file from
    /// the point containerd already holds.
    File {
        /// The file.
        path: PathBuf,
        /// Where the blob starts in it.
        offset: u64,
    },
    /// A stream read from its start (a resumed write skips what containerd already holds).
    Stream(BlobReader),
    /// A source that can be opened at any offset, such as a registry blob fetched with an
    /// HTTP `Range` request. When reading it fails or ends early, the write is resumed from
    /// the offset containerd's ingest holds (up to five times) instead of being aborted.
    Reopen(OpenAt),
}

impl std::fmt::Debug for BlobSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BlobSource::Bytes(b) => write!(f, "Bytes({} bytes)", b.len()),
            BlobSource::File { path, offset } => write!(f, "File({}@{offset})", path.display()),
            BlobSource::Stream(_) => f.write_str("Stream"),
            BlobSource::Reopen(_) => f.write_str("Reopen"),
        }
    }
}

/// A blob in the content store.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ContentInfo {
    /// Its digest.
    pub digest: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its labels.
    pub labels: HashMap<String, String>,
}

impl From<content::Info> for ContentInfo {
    fn from(info: content::Info) -> ContentInfo {
        ContentInfo {
            digest: info.digest,
            size: u64::try_from(info.size).unwrap_or_default(),
            labels: info.labels,
        }
    }
}

impl Client {
    /// Writes a blob of `size` bytes that must hash to `digest`, under the ingest reference
    /// `reference`, committing it with `labels`. A write cut short earlier under the same
    /// reference resumes where containerd's copy ends. A blob already present gets the labels it lacks. `progress` is told the bytes written so far.
    ///
    /// A short source gives [`Error::SizeMismatch`], data with another digest
    /// [`Error::DigestMismatch`]; either way the partial ingest is aborted.
    pub async fn write_blob(
        &self,
        reference: &str,
        digest: &str,
        size: u64,
        labels: HashMap<String, String>,
        source: BlobSource,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<(), Error> {
        if let Some(existing) = self.content_info(digest).await? {
            // Present already (written by an earlier import, say): it still needs the labels
            // that keep what it refers to.
            let missing: HashMap<String, String> = labels
                .into_iter()
                .filter(|(k, v)| existing.labels.get(k) != Some(v))
                .collect();
            if !missing.is_empty() {
                self.label_blob(digest, missing).await?;
            }
            progress(size);
            return Ok(());
        }
        let result = match source {
            BlobSource::Reopen(open) => {
                self.write_resuming(reference, digest, size, labels, open, progress)
                    .await
            }
            source => self
                .write_blob_once(reference, digest, size, labels, source, progress)
                .await
                .map_err(|failure| failure.error),
        };
        if result.is_err() {
            let abort = content::AbortRequest {
                r#ref: reference.to_owned(),
            };
            let _ = self.content().abort(abort).await;
        }
        result
    }

    /// Writes from a source that can be reopened, resuming after the source broke off.
    async fn write_resuming(
        &self,
        reference: &str,
        digest: &str,
        size: u64,
        labels: HashMap<String, String>,
        open: OpenAt,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<(), Error> {
        let mut attempt = 0;
        loop {
            let source = BlobSource::Reopen(open.clone());
            let outcome = self
                .write_blob_once(reference, digest, size, labels.clone(), source, progress)
                .await;
            match outcome {
                Ok(()) => return Ok(()),
                Err(failure) if failure.resumable && attempt < RESUMES => {
                    attempt += 1;
                    tracing::debug!(
                        "{digest}: source broke off ({}); resuming, attempt {attempt}",
                        failure.error
                    );
                    tokio::time::sleep(Duration::from_millis(50 * u64::from(attempt))).await;
                }
                Err(failure) => return Err(failure.error),
            }
        }
    }

    /// One write attempt: Stat to learn containerd's offset, the data from there, Commit.
    async fn write_blob_once(
        &self,
        reference: &str,
        digest: &str,
        size: u64,
        labels: HashMap<String, String>,
        source: BlobSource,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<(), Failure> {
        let reopenable = matches!(source, BlobSource::Reopen(_));
        let object = format!("content {digest}");
        let total = i64::try_from(size).map_err(|_| {
            Failure::fatal(Error::SizeMismatch {
                digest: digest.to_owned(),
                expected: size,
                actual: 0,
            })
        })?;
        let (requests, outgoing) = mpsc::channel::<WriteContentRequest>(4);
        let stat = WriteContentRequest {
            action: WriteAction::Stat as i32,
            r#ref: reference.to_owned(),
            ..Default::default()
        };
        requests.send(stat).await.map_err(|_| {
            Failure::fatal(Error::call(
                "content.Write",
                &object,
                tonic::Status::cancelled("closed"),
            ))
        })?;
        // A resumed write may find the ingest still locked by the attempt that just ended.
        let locked = |e: Error| Failure {
            resumable: reopenable && e.code() == Some(tonic::Code::Unavailable),
            error: e,
        };
        let mut responses = self
            .unary("content.Write", &object, async {
                self.content().write(ReceiverStream::new(outgoing)).await
            })
            .await
            .map_err(locked)?;
        let status = next(&mut responses, &object).await.map_err(locked)?;
        // An earlier attempt may have left data; continue after it.
        let mut offset = u64::try_from(status.offset).unwrap_or(0).min(size);
        if offset > 0 {
            tracing::debug!("resuming {digest} at {offset} of {size}");
        }

        // Feed the data from a task while the responses are read here.
        let feeder_digest = digest.to_owned();
        let feeder_ref = reference.to_owned();
        let feeder = tokio::spawn(async move {
            let mut reader: Box<dyn tokio::io::AsyncRead + Send + Unpin> = match source {
                BlobSource::Bytes(bytes) => {
                    let start = usize::try_from(offset)
                        .unwrap_or(bytes.len())
                        .min(bytes.len());
                    Box::new(std::io::Cursor::new(bytes[start..].to_vec()))
                }
                BlobSource::File { path, offset: base } => {
                    let mut file = tokio::fs::File::open(&path)
                        .await
                        .map_err(|e| Feed::Open(Error::io(&path, e)))?;
                    file.seek(SeekFrom::Start(base + offset))
                        .await
                        .map_err(|e| Feed::Open(Error::io(&path, e)))?;
                    Box::new(file)
                }
                BlobSource::Reopen(open) => open(offset).await.map_err(Feed::Open)?,
                BlobSource::Stream(mut stream) => {
                    let skipped =
                        tokio::io::copy(&mut (&mut stream).take(offset), &mut tokio::io::sink())
                            .await
                            .map_err(|e| {
                                Feed::Read(Error::io(format!("source of {feeder_digest}"), e))
                            })?;
                    if skipped < offset {
                        return Err(Feed::Read(Error::SizeMismatch {
                            digest: feeder_digest,
                            expected: size,
                            actual: skipped,
                        }));
                    }
                    stream
                }
            };
            let mut written = offset;
            let write = |data: Vec<u8>, at: u64| WriteContentRequest {
                action: WriteAction::Write as i32,
                r#ref: feeder_ref.clone(),
                total,
                offset: i64::try_from(at).unwrap_or(i64::MAX),
                data,
                ..Default::default()
            };
            while written < size {
                let want = usize::try_from((size - written).min(CHUNK as u64)).unwrap_or(CHUNK);
                let mut data = vec![0; want];
                let mut filled = 0;
                while filled < want {
                    let broke = match reader.read(&mut data[filled..]).await {
                        Ok(0) => Error::SizeMismatch {
                            digest: feeder_digest.clone(),
                            expected: size,
                            actual: written + filled as u64,
                        },
                        Ok(n) => {
                            filled += n;
                            continue;
                        }
                        Err(e) => Error::io(format!("source of {feeder_digest}"), e),
                    };
                    // Hand containerd what did arrive, so a resumed write starts after it.
                    if filled > 0 {
                        data.truncate(filled);
                        let _ = requests.send(write(data, written)).await;
                    }
                    return Err(Feed::Read(broke));
                }
                let request = write(data, written);
                written += want as u64;
                if requests.send(request).await.is_err() {
                    // containerd ended the stream; its status says why.
                    return Ok(());
                }
            }
            let commit = WriteContentRequest {
                action: WriteAction::Commit as i32,
                r#ref: feeder_ref,
                total,
                expected: feeder_digest,
                offset: total,
                labels,
                ..Default::default()
            };
            let _ = requests.send(commit).await;
            Ok(())
        });

        let mut outcome = Ok(());
        loop {
            match responses.next().await {
                Some(Ok(response)) => {
                    if response.action == WriteAction::Commit as i32 {
                        break;
                    }
                    offset = u64::try_from(response.offset).unwrap_or(offset);
                    progress(offset);
                }
                Some(Err(status)) => {
                    outcome = Err(commit_error(digest, &object, status));
                    break;
                }
                None => {
                    outcome = Err(Error::call(
                        "content.Write",
                        &object,
                        tonic::Status::aborted("containerd ended the write without a commit"),
                    ));
                    break;
                }
            }
        }
        // A feeder error (short source) is the real cause when both failed.
        match feeder.await {
            Ok(Err(Feed::Read(error))) => {
                return Err(Failure {
                    error,
                    resumable: reopenable,
                });
            }
            Ok(Err(Feed::Open(error))) => return Err(Failure::fatal(error)),
            Err(e) => {
                return Err(Failure::fatal(Error::io(
                    format!("source of {digest}"),
                    std::io::Error::other(e.to_string()),
                )));
            }
            Ok(Ok(())) => {}
        }
        outcome.map_err(Failure::fatal)?;
        progress(size);
        Ok(())
    }

    /// The blob `digest`, or `None` when the store lacks it.
    pub async fn content_info(&self, digest: &str) -> Result<Option<ContentInfo>, Error> {
        let request = content::InfoRequest {
            digest: digest.to_owned(),
        };
        match self
            .unary("content.Info", format!("content {digest}"), async {
                self.content().info(request).await
            })
            .await
        {
            Ok(info) => Ok(info.info.map(ContentInfo::from)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Reads all of blob `digest`.
    pub async fn read_blob(&self, digest: &str) -> Result<Vec<u8>, Error> {
        let object = format!("content {digest}");
        let request = content::ReadContentRequest {
            digest: digest.to_owned(),
            offset: 0,
            size: 0,
        };
        let mut stream = self
            .unary("content.Read", &object, async {
                self.content().read(request).await
            })
            .await?;
        let mut data = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|s| Error::call("content.Read", &object, s))?;
            data.extend_from_slice(&chunk.data);
        }
        Ok(data)
    }

    /// The blobs matching `filters` (containerd's filter syntax; empty for all).
    pub async fn list_content(&self, filters: &[&str]) -> Result<Vec<ContentInfo>, Error> {
        let request = content::ListContentRequest {
            filters: filters.iter().map(|f| f.to_string()).collect(),
        };
        let object = format!("namespace {}", self.namespace());
        let mut stream = self
            .unary("content.List", &object, async {
                self.content().list(request).await
            })
            .await?;
        let mut out = Vec::new();
        while let Some(batch) = stream.next().await {
            let batch = batch.map_err(|s| Error::call("content.List", &object, s))?;
            out.extend(batch.info.into_iter().map(ContentInfo::from));
        }
        Ok(out)
    }

    /// The ingest references of writes in progress (or abandoned).
    pub async fn list_ingests(&self) -> Result<Vec<String>, Error> {
        let request = content::ListStatusesRequest { filters: vec![] };
        let listed = self
            .unary(
                "content.ListStatuses",
                format!("namespace {}", self.namespace()),
                async { self.content().list_statuses(request).await },
            )
            .await?;
        Ok(listed.statuses.into_iter().map(|s| s.r#ref).collect())
    }

    /// Deletes blob `digest`.
    pub async fn delete_blob(&self, digest: &str) -> Result<(), Error> {
        let request = content::DeleteContentRequest {
            digest: digest.to_owned(),
        };
        self.unary("content.Delete", format!("content {digest}"), async {
            self.content().delete(request).await
        })
        .await
        .map(|_| ())
    }

    /// Sets `labels` on blob `digest` (other labels stay).
    pub async fn label_blob(
        &self,
        digest: &str,
        labels: HashMap<String, String>,
    ) -> Result<(), Error> {
        let paths = labels.keys().map(|k| format!("labels.{k}")).collect();
        let request = content::UpdateRequest {
            info: Some(content::Info {
                digest: digest.to_owned(),
                labels,
                ..Default::default()
            }),
            update_mask: Some(FieldMask { paths }),
        };
        self.unary("content.Update", format!("content {digest}"), async {
            self.content().update(request).await
        })
        .await
        .map(|_| ())
    }
}

/// Why a write attempt failed, and whether resuming it may help.
struct Failure {
    error: Error,
    resumable: bool,
}

impl Failure {
    fn fatal(error: Error) -> Failure {
        Failure {
            error,
            resumable: false,
        }
    }
}

/// How feeding a write failed: opening its source, or reading it (which a reopenable source
/// survives).
enum Feed {
    Open(Error),
    Read(Error),
}

async fn next(
    responses: &mut tonic::Streaming<content::WriteContentResponse>,
    object: &str,
) -> Result<content::WriteContentResponse, Error> {
    match responses.next().await {
        Some(Ok(r)) => Ok(r),
        Some(Err(status)) => Err(Error::call("content.Write", object, status)),
        None => Err(Error::call(
            "content.Write",
            object,
            tonic::Status::aborted("containerd ended the write"),
        )),
    }
}

/// containerd reports digest and size mismatches at commit as failed preconditions.
fn commit_error(digest: &str, object: &str, status: tonic::Status) -> Error {
    let message = status.message();
    if message.contains("unexpected commit digest") {
        let actual = message
            .split_whitespace()
            .find(|w| w.starts_with("sha256:") && !w.starts_with(digest))
            .map(|w| w.trim_end_matches(',').to_owned())
            .unwrap_or_else(|| message.to_owned());
        Error::DigestMismatch {
            expected: digest.to_owned(),
            actual,
        }
    } else {
        Error::call("content.Write", object, status)
    }
}
