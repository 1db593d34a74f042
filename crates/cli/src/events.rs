//! `ctrd events`: one line per event as it happens.

use ctrd_client::{Client, Envelope};
use futures_util::StreamExt;

use crate::error::Error;

/// An event as `--json` prints it.
#[derive(Debug, serde::Serialize)]
struct Line<'a> {
    timestamp: Option<String>,
    namespace: &'a str,
    topic: &'a str,
    #[serde(rename = "type")]
    type_url: &'a str,
    event: String,
}

fn line(envelope: &Envelope) -> Line<'_> {
    Line {
        timestamp: envelope
            .timestamp
            .map(|t| humantime::format_rfc3339_nanos(t).to_string()),
        namespace: &envelope.namespace,
        topic: &envelope.topic,
        type_url: envelope.event.type_url(),
        event: format!("{:?}", envelope.event),
    }
}

/// Prints events until interrupted.
pub async fn events(client: &Client, filters: &[String], json: bool) -> Result<i32, Error> {
    let filters: Vec<&str> = filters.iter().map(String::as_str).collect();
    let mut stream = client.subscribe(&filters);
    while let Some(envelope) = stream.next().await {
        let envelope = envelope?;
        let l = line(&envelope);
        if json {
            match serde_json::to_string(&l) {
                Ok(text) => println!("{text}"),
                Err(e) => eprintln!("ctrd: encoding an event: {e}"),
            }
        } else {
            println!(
                "{} {} {} {}",
                l.timestamp.unwrap_or_default(),
                l.namespace,
                l.topic,
                l.event
            );
        }
    }
    Ok(0)
}
