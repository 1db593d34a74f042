//! Importing an image archive through containerd's transfer service (containerd 2.x).
//!
//! The archive's bytes go to the daemon over a streaming-service stream, as
//! `containerd.types.transfer.Data` messages, under the daemon's flow control: the daemon
//! (the receiving side) grants credit with `WindowUpdate` messages, and this side never has
//! more bytes in flight than it was granted. Closing our half of the stream is the end of the
//! archive. The source is an `ImageImportStream` naming that stream; the destination an
//! `ImageStore` with the names, platform and unpack the import asks for. Everything runs in
//! one lease of ours, which the daemon's transfer service adopts, so a failed import leaves
//! nothing once the lease is released.

use std::path::Path;
use std::time::{Duration, SystemTime};

use ctrd_api::TypeUrl;
use ctrd_api::containerd::types::transfer as types;
use tokio::io::AsyncReadExt;
use tokio::task::JoinHandle;

use super::{Stream, api_platform, forward_progress, one_line, unpacks};
use crate::image::Platform;
use crate::{Client, Error, Image, ImportOptions, Progress};

/// How long an import's lease lives if this process dies before removing it.
const LEASE_EXPIRY: Duration = Duration::from_secs(3600);

/// The most bytes one `Data` message carries (containerd's own sender uses 32 KiB).
const MAX_CHUNK: usize = 32 << 10;

impl Client {
    /// Imports the archive at `path` through the transfer service, in a lease of its own.
    pub(crate) async fn transfer_import(
        &self,
        path: &Path,
        options: &ImportOptions,
    ) -> Result<Vec<Image>, Error> {
        let file = tokio::fs::File::open(path)
            .await
            .map_err(|e| Error::io(path, e))?;
        let length = file.metadata().await.map_err(|e| Error::io(path, e))?.len();
        let lease = self.lease(LEASE_EXPIRY).await?;
        let result = lease
            .client()
            .transfer_import_in_lease(path, file, length, options)
            .await;
        self.images_then_release(result, lease).await
    }

    async fn transfer_import_in_lease(
        &self,
        path: &Path,
        file: tokio::fs::File,
        length: u64,
        options: &ImportOptions,
    ) -> Result<Vec<String>, Error> {
        let refused = |reason: String| Error::Archive {
            path: path.to_path_buf(),
            reason,
        };
        let progress = match self.open_stream("progress").await {
            Ok(stream) => stream,
            Err(e) if e.code() == Some(tonic::Code::Unimplemented) => {
                return Err(refused(
                    "importing through the transfer service: this containerd has no transfer \
                     service (it came with 2.0)"
                        .into(),
                ));
            }
            Err(e) => return Err(e),
        };
        let progress_id = progress.id.clone();
        let (progress_keep, progress_task) = forward_progress(progress, options.clone());
        let data = self.open_stream("import").await?;
        let source = types::ImageImportStream {
            stream: data.id.clone(),
            // Empty: the daemon detects a compressed archive itself, as for `ctr import`.
            media_type: String::new(),
            force_compress: false,
        };
        options.report(Progress::Total { bytes: length });
        let sender = send_archive(data, file, length, path, options.clone());
        let platform = api_platform(&Platform::host());
        let destination = types::ImageStore {
            platforms: vec![platform.clone()],
            extra_references: vec![types::ImageReference {
                name: name_prefix(options.name.as_deref()),
                is_prefix: true,
                allow_overwrite: true,
                add_digest: false,
                skip_named_digest: false,
            }],
            unpacks: unpacks(options, &platform),
            ..Default::default()
        };
        let object = format!("image archive {}", path.display());
        let result = self
            .run_transfer(source.to_any(), destination.to_any(), progress_id, &object)
            .await;
        drop(progress_keep);
        // The daemon ended the transfer, so it reads no more: a sender still waiting for
        // credit has nothing left to do.
        sender.abort();
        let sent = sender.await;
        // The daemon closes the progress stream when the transfer ends.
        let saved = tokio::time::timeout(Duration::from_secs(5), progress_task)
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
        match result {
            Ok(()) => {}
            Err(Error::Call { message, .. }) => {
                // A failed read of the archive explains the daemon's error best.
                if let Ok(Err(e @ Error::Io { .. })) = sent {
                    return Err(e);
                }
                return Err(refused(format!(
                    "containerd's transfer service: {}",
                    one_line(&message)
                )));
            }
            Err(e) => return Err(e),
        }
        if saved.is_empty() {
            return Err(refused(
                "containerd's transfer service made no image of it: the archive names none \
                 (give a name)"
                    .into(),
            ));
        }
        Ok(saved)
    }
}

/// The prefix the daemon names images by: full names in the archive are kept, bare tags are
/// put after it. Without a name, `import-DATE`, as `ctr import` does.
fn name_prefix(name: Option<&str>) -> String {
    match name {
        Some(name) => name.to_owned(),
        None => {
            let now = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
            format!("import-{}", now.get(..10).unwrap_or("undated"))
        }
    }
}

/// Sends the archive's `length` bytes from `file` over `stream` as the daemon's window
/// allows, reporting each chunk as [`Progress::Blob`] keyed by the archive's path; closes
/// our half of the stream at the end.
fn send_archive(
    stream: Stream,
    mut file: tokio::fs::File,
    length: u64,
    path: &Path,
    options: ImportOptions,
) -> JoinHandle<Result<u64, Error>> {
    let path = path.to_path_buf();
    tokio::spawn(async move {
        let Stream {
            outbound,
            mut inbound,
            ..
        } = stream;
        let key = path.display().to_string();
        let mut buffer = vec![0u8; MAX_CHUNK];
        let mut credit: u64 = 0;
        let mut sent: u64 = 0;
        loop {
            while credit == 0 {
                match inbound.message().await {
                    Ok(Some(any)) => {
                        if let Ok(update) = types::WindowUpdate::from_any(&any) {
                            credit += u64::try_from(update.update).unwrap_or_default();
                        }
                    }
                    // The daemon stopped reading; the transfer's own answer says why.
                    Ok(None) | Err(_) => return Ok(sent),
                }
            }
            let want = usize::try_from(credit).unwrap_or(MAX_CHUNK).min(MAX_CHUNK);
            let read = file
                .read(&mut buffer[..want])
                .await
                .map_err(|e| Error::io(&path, e))?;
            if read == 0 {
                // Dropping `outbound` half-closes the stream: the end of the archive. Our
                // receiving half stays open until the daemon closes it (or the transfer
                // ends): dropping it would reset the stream under bytes not yet read.
                drop(outbound);
                while let Ok(Some(_)) = inbound.message().await {}
                return Ok(sent);
            }
            let data = types::Data {
                data: buffer[..read].to_vec(),
            };
            if outbound.send(data.to_any()).await.is_err() {
                return Ok(sent);
            }
            credit -= read as u64;
            sent += read as u64;
            options.report(Progress::Blob {
                digest: key.clone(),
                written: sent,
                size: length,
            });
        }
    })
}
