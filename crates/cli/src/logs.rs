//! `ctrd logs [-f] ID`: a container's output read back from the file its `--log-uri` names.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ctrd_client::Client;
use ctrd_logging::Stream;
use ctrd_logging::reader::{Format, LogReader};

use crate::args::Logs;
use crate::error::Error;

/// The container label `ctrd run --log-uri` stores the URI in.
pub const LOG_URI_LABEL: &str = "io.ctrd.log-uri";

/// How long a follower keeps reading after the task exited (the driver drains).
const DRAIN_GRACE: Duration = Duration::from_millis(500);

/// Where a log URI puts the output, and in which form.
#[derive(Debug, PartialEq, Eq)]
enum LogFile {
    /// Our driver's json-file or CRI sink.
    Records(PathBuf, Format),
    /// containerd's `file://`: the raw bytes of both streams.
    Raw(PathBuf),
}

fn log_file(uri: &str) -> Result<LogFile, String> {
    if let Some(path) = uri.strip_prefix("file://") {
        return Ok(LogFile::Raw(PathBuf::from(path)));
    }
    if !(uri.starts_with("binary://") || uri.starts_with("binary-v2://")) {
        return Err(format!("log URI {uri:?}: not a file:// or binary:// URI"));
    }
    let query = uri.split_once('?').map_or("", |(_, q)| q);
    let mut sink = "json-file".to_owned();
    let mut path = None;
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        match &*key {
            "sink" => sink = value.into_owned(),
            "path" => path = Some(PathBuf::from(value.into_owned())),
            _ => {}
        }
    }
    let format = match sink.as_str() {
        "json-file" => Format::JsonFile,
        "cri" => Format::Cri,
        other => {
            return Err(format!(
                "log URI {uri:?}: the {other} sink keeps no file here (read it where that sink writes)"
            ));
        }
    };
    let path = path.ok_or_else(|| format!("log URI {uri:?}: no path= in it"))?;
    Ok(LogFile::Records(path, format))
}

/// Prints container `id`'s logs; with `-f`, until its task exits.
pub async fn logs(client: &Client, logs: Logs) -> Result<i32, Error> {
    let container = client.get_container(&logs.id).await?;
    let uri = container.labels.get(LOG_URI_LABEL).ok_or_else(|| {
        Error::Usage(format!(
            "container {}: no log file (it was not run with ctrd run --log-uri)",
            logs.id
        ))
    })?;
    let file = log_file(uri).map_err(Error::Usage)?;

    let done = Arc::new(AtomicBool::new(!logs.follow));
    if logs.follow {
        let flag = done.clone();
        match client.load_task(&logs.id).await {
            Ok(task) => {
                tokio::spawn(async move {
                    let _ = task.wait().await;
                    tokio::time::sleep(DRAIN_GRACE).await;
                    flag.store(true, Ordering::SeqCst);
                });
            }
            Err(e) if e.is_not_found() => flag.store(true, Ordering::SeqCst),
            Err(e) => return Err(e.into()),
        }
    }
    let id = logs.id.clone();
    tokio::task::spawn_blocking(move || print(file, done))
        .await
        .map_err(|e| Error::Usage(format!("logs of {id}: {e}")))?
        .map_err(|e| Error::Usage(format!("logs of {}: {e}", logs.id)))?;
    Ok(0)
}

/// Copies the log to stdout (and stderr records to stderr) until its end, or, when `done` is
/// not yet set, until it is and nothing is left.
fn print(file: LogFile, done: Arc<AtomicBool>) -> Result<(), String> {
    let mut stdout = std::io::stdout().lock();
    let mut stderr = std::io::stderr();
    match file {
        LogFile::Records(path, format) => {
            let mut reader = if done.load(Ordering::SeqCst) {
                LogReader::open(&path, format)
            } else {
                LogReader::follow(&path, format, move || done.load(Ordering::SeqCst))
            }
            .map_err(|e| e.to_string())?;
            let mut gaps = 0;
            while let Some(entry) = reader.next_entry().map_err(|e| e.to_string())? {
                if reader.gaps() > gaps {
                    gaps = reader.gaps();
                    // Said where the records went missing, between the lines around it.
                    let _ = writeln!(
                        stderr,
                        "ctrd logs: some records are missing here: the log rotated past \
                         max-file before they were read"
                    );
                }
                let mut bytes = Vec::with_capacity(entry.bytes.len() + 1);
                entry.append_to(&mut bytes);
                let written = match entry.stream {
                    Stream::Stdout => stdout.write_all(&bytes).and_then(|()| stdout.flush()),
                    Stream::Stderr => stderr.write_all(&bytes),
                };
                if written.is_err() {
                    // The reader went away (a closed pipe): stop quietly.
                    return Ok(());
                }
            }
        }
        LogFile::Raw(path) => {
            let mut log =
                std::fs::File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let mut buffer = vec![0u8; 64 * 1024];
            loop {
                let n = log
                    .read(&mut buffer)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                if n > 0 {
                    if stdout
                        .write_all(&buffer[..n])
                        .and_then(|()| stdout.flush())
                        .is_err()
                    {
                        return Ok(());
                    }
                    continue;
                }
                if done.load(Ordering::SeqCst) {
                    // One last look after the task ended.
                    let position = log.stream_position().unwrap_or(0);
                    let length = log.metadata().map(|m| m.len()).unwrap_or(0);
                    if length <= position {
                        return Ok(());
                    }
                    let _ = log.seek(SeekFrom::Start(position));
                    continue;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{LogFile, log_file};
    use ctrd_logging::reader::Format;

    #[test]
    fn log_uris_name_their_files() {
        assert_eq!(
            log_file("binary:///usr/bin/ctrd-log-driver?sink=cri&path=/var/log/c.log"),
            Ok(LogFile::Records("/var/log/c.log".into(), Format::Cri))
        );
        assert_eq!(
            log_file("binary-v2:///d?path=%2Ftmp%2Fc.log"),
            Ok(LogFile::Records("/tmp/c.log".into(), Format::JsonFile))
        );
        assert_eq!(
            log_file("file:///tmp/out"),
            Ok(LogFile::Raw("/tmp/out".into()))
        );
        assert!(
            log_file("binary:///d?sink=journald")
                .expect_err("journald")
                .contains("journald sink keeps no file")
        );
        assert!(log_file("binary:///d?sink=cri").is_err());
        assert!(log_file("fifo:///x").is_err());
    }
}
