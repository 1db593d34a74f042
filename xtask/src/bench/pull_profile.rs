//! A pull's timeline seen from the daemon: when each layer's download starts and ends (its
//! ingest in the content store) and when each layer's unpack starts and ends (its `extract-`
//! snapshot, then its committed chain id), polled every few milliseconds while the client runs.
//! Both clients name ingests after the blob digest and extraction snapshots after the chain
//! id, so the same poll reads either.

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ctrd_api::containerd::services::content::v1::ListStatusesRequest;
use ctrd_api::containerd::services::snapshots::v1::ListSnapshotsRequest;
use ctrd_client::Client;
use futures_util::StreamExt;
use sha2::{Digest, Sha256};

use crate::Error;

/// How often the daemon is asked.
const POLL: Duration = Duration::from_millis(5);

fn message(e: impl std::fmt::Display) -> Error {
    Error::Message(e.to_string())
}

/// First and last time (ms since the command started) a thing was seen.
#[derive(Debug, Clone, Copy, Default)]
struct Span {
    first: Option<f64>,
    last: Option<f64>,
}

impl Span {
    fn saw(&mut self, at: f64) {
        self.first.get_or_insert(at);
        self.last = Some(at);
    }
}

/// What one poll loop saw.
#[derive(Default)]
struct Seen {
    /// Ingest refs by the text they contain.
    ingests: HashMap<String, Span>,
    /// Active snapshot keys.
    active: HashMap<String, Span>,
    /// Committed snapshot names: when first seen.
    committed: HashMap<String, f64>,
}

/// Runs `command` (a pull into `snapshotter`) while polling `address`'s namespace, then prints
/// one row per layer of image `reference`: fetch start and end, unpack start and end, in ms
/// from the command's start.
pub fn profile(
    label: &str,
    mut command: Command,
    address: &std::path::Path,
    namespace: &str,
    snapshotter: &str,
    reference: &str,
) -> Result<(), Error> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(message)?;
    runtime.block_on(async {
        let client = Client::connect(address)
            .await
            .map_err(message)?
            .with_namespace(namespace);
        let cpu_before = children_cpu()?;
        let start = Instant::now();
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(message)?;
        let mut seen = Seen::default();
        let status = loop {
            if let Some(status) = child.try_wait().map_err(message)? {
                break status;
            }
            let at = start.elapsed().as_secs_f64() * 1000.0;
            poll(&client, snapshotter, at, &mut seen).await?;
            tokio::time::sleep(POLL).await;
        };
        let total = start.elapsed().as_secs_f64() * 1000.0;
        if !status.success() {
            return Err(Error::Message(format!(
                "{label}: the pull failed ({status})"
            )));
        }
        // The client has been waited for: its CPU time is in the children's account (the
        // daemon and the registry, still running, are not).
        let (user, system) = children_cpu()?;
        let (user, system) = (user - cpu_before.0, system - cpu_before.1);
        let (layers, chain) = layers(&client, reference).await?;
        println!(
            "\npull timeline, {label} (ms from start; total {total:.0} ms; the client's CPU: \
             {user:.0} ms user, {system:.0} ms system)"
        );
        println!("| layer | fetch start | fetch end | unpack start | unpack end |");
        println!("|---|---|---|---|---|");
        for (i, (digest, chain_id)) in layers.iter().zip(&chain).enumerate() {
            let hex = digest.trim_start_matches("sha256:");
            let fetch = seen
                .ingests
                .iter()
                .find(|(r, _)| r.contains(hex))
                .map(|(_, s)| *s)
                .unwrap_or_default();
            let chain_hex = chain_id.trim_start_matches("sha256:");
            let unpack = seen
                .active
                .iter()
                .find(|(k, _)| k.starts_with("extract-") && k.contains(chain_hex))
                .map(|(_, s)| *s)
                .unwrap_or_default();
            let done = seen.committed.get(chain_id).copied();
            let ms = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.0}"));
            println!(
                "| {i} | {} | {} | {} | {} |",
                ms(fetch.first),
                ms(fetch.last),
                ms(unpack.first),
                ms(done.or(unpack.last))
            );
        }
        Ok(())
    })
}

/// CPU time (user, system) in ms of this process's children that have ended and been waited
/// for.
fn children_cpu() -> Result<(f64, f64), Error> {
    use nix::sys::resource::{UsageWho, getrusage};
    let usage = getrusage(UsageWho::RUSAGE_CHILDREN).map_err(message)?;
    let ms = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 * 1000.0 + t.tv_usec() as f64 / 1000.0;
    Ok((ms(usage.user_time()), ms(usage.system_time())))
}

async fn poll(client: &Client, snapshotter: &str, at: f64, seen: &mut Seen) -> Result<(), Error> {
    let statuses = client
        .content()
        .list_statuses(ListStatusesRequest { filters: vec![] })
        .await
        .map_err(message)?
        .into_inner()
        .statuses;
    for status in statuses {
        seen.ingests.entry(status.r#ref).or_default().saw(at);
    }
    let mut stream = client
        .snapshots()
        .list(ListSnapshotsRequest {
            snapshotter: snapshotter.to_owned(),
            filters: vec![],
        })
        .await
        .map_err(message)?
        .into_inner();
    while let Some(batch) = stream.next().await {
        for info in batch.map_err(message)?.info {
            // Kind 3 is Committed in containerd's snapshots API.
            if info.kind == 3 {
                seen.committed.entry(info.name).or_insert(at);
            } else {
                seen.active.entry(info.name).or_default().saw(at);
            }
        }
    }
    Ok(())
}

/// The layer digests of image `reference` and their chain ids (its layers are uncompressed,
/// so a layer's digest is its diff id).
async fn layers(client: &Client, reference: &str) -> Result<(Vec<String>, Vec<String>), Error> {
    let image = client.get_image(reference).await.map_err(message)?;
    let top: serde_json::Value =
        serde_json::from_slice(&client.read_blob(&image.digest).await.map_err(message)?)
            .map_err(message)?;
    let manifest = match top["manifests"].as_array() {
        Some(list) => {
            let digest = list
                .first()
                .and_then(|m| m["digest"].as_str())
                .ok_or_else(|| message("empty index"))?;
            serde_json::from_slice(&client.read_blob(digest).await.map_err(message)?)
                .map_err(message)?
        }
        None => top,
    };
    let config_digest = manifest["config"]["digest"]
        .as_str()
        .ok_or_else(|| message("manifest without a config"))?;
    let config: serde_json::Value =
        serde_json::from_slice(&client.read_blob(config_digest).await.map_err(message)?)
            .map_err(message)?;
    let digests: Vec<String> = manifest["layers"]
        .as_array()
        .map(|l| {
            l.iter()
                .filter_map(|d| d["digest"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let mut chain = Vec::new();
    for diff_id in config["rootfs"]["diff_ids"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let diff_id = diff_id.as_str().unwrap_or_default();
        let next = match chain.last() {
            None => diff_id.to_owned(),
            Some(parent) => format!(
                "sha256:{:x}",
                Sha256::digest(format!("{parent} {diff_id}").as_bytes())
            ),
        };
        chain.push(next);
    }
    Ok((digests, chain))
}
