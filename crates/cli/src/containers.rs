//! `ctrd ps`, `ctrd kill`, `ctrd rm`.

use std::time::Duration;

use ctrd_client::Client;

use crate::args::{Kill, Rm};
use crate::error::Error;
use crate::table;

/// A container and its task, as `ps` lists it.
#[derive(Debug, serde::Serialize)]
struct Row {
    id: String,
    image: String,
    runtime: String,
    status: String,
    pid: u32,
}

/// Lists containers with their tasks.
pub async fn ps(client: &Client, json: bool) -> Result<i32, Error> {
    client.require_namespace().await?;
    let containers = client.list_containers(&[]).await?;
    let tasks = client.list_tasks().await?;
    let rows: Vec<Row> = containers
        .into_iter()
        .map(|c| {
            let task = tasks.iter().find(|t| t.0 == c.id);
            Row {
                status: task.map_or("-".into(), |t| t.2.clone()),
                pid: task.map_or(0, |t| t.1),
                id: c.id,
                image: c.image,
                runtime: c.runtime,
            }
        })
        .collect();
    if json {
        table::json(&rows);
    } else {
        let cells: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                vec![
                    r.id.clone(),
                    r.image.clone(),
                    r.runtime.clone(),
                    r.status.clone(),
                    if r.pid == 0 {
                        "-".into()
                    } else {
                        r.pid.to_string()
                    },
                ]
            })
            .collect();
        table::print(&["CONTAINER", "IMAGE", "RUNTIME", "STATUS", "PID"], &cells);
    }
    Ok(0)
}

/// A signal by name (`SIGKILL`, `KILL`, `kill`) or number.
pub fn parse_signal(text: &str) -> Result<i32, Error> {
    if let Ok(n) = text.parse::<i32>() {
        return Ok(n);
    }
    let name = text.to_ascii_uppercase();
    let name = name.strip_prefix("SIG").unwrap_or(&name);
    const SIGNALS: [(&str, i32); 15] = [
        ("HUP", 1),
        ("INT", 2),
        ("QUIT", 3),
        ("ABRT", 6),
        ("KILL", 9),
        ("USR1", 10),
        ("SEGV", 11),
        ("USR2", 12),
        ("PIPE", 13),
        ("ALRM", 14),
        ("TERM", 15),
        ("CHLD", 17),
        ("CONT", 18),
        ("STOP", 19),
        ("WINCH", 28),
    ];
    SIGNALS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, s)| *s)
        .ok_or_else(|| Error::Usage(format!("unknown signal {text:?}")))
}

/// Sends a signal to a container's task.
pub async fn kill(client: &Client, kill: Kill) -> Result<i32, Error> {
    client.require_namespace().await?;
    let signal = parse_signal(&kill.signal)?;
    let task = client.load_task(&kill.id).await?;
    task.kill(signal, kill.all).await?;
    Ok(0)
}

/// Removes containers, with their (stopped, or with `-f` any) tasks.
pub async fn rm(client: &Client, rm: Rm) -> Result<i32, Error> {
    client.require_namespace().await?;
    for id in &rm.ids {
        client.get_container(id).await?;
        match client.load_task(id).await {
            Ok(task) => {
                let status = client
                    .list_tasks()
                    .await?
                    .into_iter()
                    .find(|t| &t.0 == id)
                    .map(|t| t.2)
                    .unwrap_or_default();
                if status != "STOPPED" && status != "CREATED" {
                    if !rm.force {
                        return Err(Error::Usage(format!(
                            "container {id}: its task is {status}; kill it first or use rm -f"
                        )));
                    }
                    task.kill(9, true).await?;
                    let _ = tokio::time::timeout(Duration::from_secs(10), task.wait()).await;
                } else if status == "CREATED" {
                    task.kill(9, true).await.ok();
                }
                task.delete().await?;
            }
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
        client.delete_container(id).await?;
        println!("{id}");
    }
    Ok(0)
}
