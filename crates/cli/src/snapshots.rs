//! `ctrd snapshots ls|usage`.

use ctrd_client::Client;

use crate::args::Snapshots;
use crate::error::Error;
use crate::table;

/// A snapshot's disk use, as `usage` lists it.
#[derive(Debug, serde::Serialize)]
struct UsageRow {
    key: String,
    size: i64,
    inodes: i64,
}

/// Runs a snapshots subcommand.
pub async fn snapshots(client: &Client, command: Snapshots, json: bool) -> Result<i32, Error> {
    client.require_namespace().await?;
    match command {
        Snapshots::Ls { snapshotter } => {
            let list = client.list_snapshots(&snapshotter).await?;
            if json {
                table::json(&list);
            } else {
                let rows: Vec<Vec<String>> = list
                    .iter()
                    .map(|s| vec![s.name.clone(), s.parent.clone(), s.kind.clone()])
                    .collect();
                table::print(&["KEY", "PARENT", "KIND"], &rows);
            }
        }
        Snapshots::Usage { snapshotter, key } => {
            let keys = match key {
                Some(key) => vec![key],
                None => client
                    .list_snapshots(&snapshotter)
                    .await?
                    .into_iter()
                    .map(|s| s.name)
                    .collect(),
            };
            let mut rows = Vec::new();
            for key in keys {
                let usage = client.snapshot_usage(&snapshotter, &key).await?;
                rows.push(UsageRow {
                    key,
                    size: usage.size,
                    inodes: usage.inodes,
                });
            }
            if json {
                table::json(&rows);
            } else {
                let cells: Vec<Vec<String>> = rows
                    .iter()
                    .map(|r| {
                        vec![
                            r.key.clone(),
                            table::size(u64::try_from(r.size).unwrap_or_default()),
                            r.inodes.to_string(),
                        ]
                    })
                    .collect();
                table::print(&["KEY", "SIZE", "INODES"], &cells);
            }
        }
    }
    Ok(0)
}
