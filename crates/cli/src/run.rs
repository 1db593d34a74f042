//! `ctrd run` and `ctrd exec`: a process with our terminal or pipes attached.

use std::os::fd::AsFd;
use std::time::{Duration, SystemTime};

use ctrd_client::{Client, MountSpec, NewContainer, Stdio, Task};
use tokio::signal::unix::{SignalKind, signal};

use crate::args::{Exec, Run};
use crate::error::Error;
use crate::io::{self, RawMode};

/// How long output may keep flowing after the process exited (from its own children).
const OUTPUT_GRACE: Duration = Duration::from_secs(2);

fn stdin_is_terminal() -> bool {
    rustix::termios::isatty(std::io::stdin().as_fd())
}

/// Runs a container; returns the exit status to leave with (the container's own).
pub async fn run(client: &Client, run: Run) -> Result<i32, Error> {
    let mut spec = NewContainer::new(&run.id, &run.image)
        .runtime(&run.runtime)
        .snapshotter(&run.snapshotter)
        .tty(run.tty);
    if !run.command.is_empty() {
        spec = spec.args(run.command.clone());
    }
    spec.env = run.env.clone();
    spec.cwd = run.cwd.clone();
    spec.user = run.user.clone();
    spec.memory_limit = run.memory_limit;
    spec.cpus = run.cpus;
    spec.host_network = run.net_host;
    for m in &run.mount {
        spec.mounts.push(MountSpec::parse(m).map_err(Error::Usage)?);
    }
    if let Some(uri) = &run.log_uri {
        // `ctrd logs` finds the container's log file through it.
        spec.labels
            .insert(crate::logs::LOG_URI_LABEL.to_owned(), uri.clone());
    }
    let stdio = match (&run.log_uri, run.detach, run.tty) {
        (Some(uri), _, _) => Stdio::from_log_uri(uri).map_err(Error::Usage)?,
        (None, true, _) => Stdio::Null,
        (None, false, true) => Stdio::terminal(true),
        (None, false, false) => Stdio::fifos(!stdin_is_terminal()),
    };
    if run.detach && run.rm {
        return Err(Error::Usage("--rm and -d cannot be used together".into()));
    }

    client.create_container(spec).await?;
    let (task, mut pipes) = match client.new_task(&run.id, stdio).await {
        Ok(created) => created,
        Err(e) => {
            let _ = client.delete_container(&run.id).await;
            return Err(e.into());
        }
    };
    if run.detach {
        if let Err(e) = task.start().await {
            let _ = task.delete().await;
            let _ = client.delete_container(&run.id).await;
            return Err(e.into());
        }
        return Ok(0);
    }

    let raw = if run.tty { RawMode::enter()? } else { None };
    let output = io::copy_output(&mut pipes);
    let closer = client.clone();
    let id = run.id.clone();
    io::copy_input(&mut pipes, async move {
        if let Ok(task) = closer.load_task(&id).await {
            let _ = task.close_stdin().await;
        }
    });
    let code = attend(client, &task, run.tty, output).await;
    drop(raw);
    let deleted = task.delete().await;
    let code = match code {
        Ok(code) => code,
        Err(e) => {
            // It never ran: leave nothing behind.
            let _ = client.delete_container(&run.id).await;
            return Err(e);
        }
    };
    deleted?;
    if run.rm {
        client.delete_container(&run.id).await?;
    }
    Ok(code)
}

/// Starts `task` and waits for it, forwarding window size (terminal) or signals (pipes).
async fn attend(
    client: &Client,
    task: &Task,
    tty: bool,
    output: tokio::task::JoinHandle<()>,
) -> Result<i32, Error> {
    // The terminal exists once the task is created: size it before the process can look.
    let size = if tty { io::window_size() } else { None };
    if let Some((w, h)) = size {
        let _ = task.resize(w, h).await;
    }
    task.start().await?;
    if let Some((w, h)) = size {
        let _ = task.resize(w, h).await;
    }
    let forwarder = forward(client.clone(), task.id().to_owned(), None, tty);
    let exit = task.wait().await;
    forwarder.abort();
    let _ = tokio::time::timeout(OUTPUT_GRACE, output).await;
    Ok(i32::try_from(exit?.code).unwrap_or(255))
}

/// Forwards SIGWINCH as resizes (terminal) or SIGINT/SIGTERM as signals (pipes).
fn forward(
    client: Client,
    id: String,
    exec_id: Option<String>,
    tty: bool,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let (Ok(mut winch), Ok(mut int), Ok(mut term)) = (
            signal(SignalKind::window_change()),
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            return;
        };
        loop {
            let signo = tokio::select! {
                _ = winch.recv() => 28,
                _ = int.recv() => 2,
                _ = term.recv() => 15,
            };
            let Ok(task) = client.load_task(&id).await else {
                return;
            };
            if signo == 28 {
                if tty && let Some((w, h)) = io::window_size() {
                    let _ = match &exec_id {
                        None => task.resize(w, h).await,
                        Some(exec) => resize_exec(&client, &id, exec, w, h).await,
                    };
                }
            } else if !tty {
                let _ = match &exec_id {
                    None => task.kill(signo, false).await,
                    Some(exec) => kill_exec(&client, &id, exec, signo).await,
                };
            }
        }
    })
}

async fn resize_exec(
    client: &Client,
    id: &str,
    exec: &str,
    w: u32,
    h: u32,
) -> Result<(), ctrd_client::Error> {
    let request = ctrd_client::api::containerd::services::tasks::v1::ResizePtyRequest {
        container_id: id.to_owned(),
        exec_id: exec.to_owned(),
        width: w,
        height: h,
    };
    client
        .tasks()
        .resize_pty(request)
        .await
        .map(|_| ())
        .map_err(|s| ctrd_client::Error::Call {
            call: "tasks.ResizePty",
            object: format!("exec {exec} in task {id}"),
            code: s.code(),
            message: s.message().to_owned(),
        })
}

async fn kill_exec(
    client: &Client,
    id: &str,
    exec: &str,
    signo: i32,
) -> Result<(), ctrd_client::Error> {
    let request = ctrd_client::api::containerd::services::tasks::v1::KillRequest {
        container_id: id.to_owned(),
        exec_id: exec.to_owned(),
        signal: u32::try_from(signo).unwrap_or(15),
        all: false,
    };
    client
        .tasks()
        .kill(request)
        .await
        .map(|_| ())
        .map_err(|s| ctrd_client::Error::Call {
            call: "tasks.Kill",
            object: format!("exec {exec} in task {id}"),
            code: s.code(),
            message: s.message().to_owned(),
        })
}

/// Runs a command in a running container; returns its exit status.
pub async fn exec(client: &Client, exec: Exec) -> Result<i32, Error> {
    let task = client.load_task(&exec.id).await?;
    let exec_id = exec.exec_id.clone().unwrap_or_else(|| {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        format!("exec-{nanos}")
    });
    let stdio = if exec.tty {
        Stdio::terminal(true)
    } else {
        Stdio::fifos(!stdin_is_terminal())
    };
    let (process, mut pipes) = task.exec(&exec_id, &exec.command, stdio).await?;
    let raw = if exec.tty { RawMode::enter()? } else { None };
    let output = io::copy_output(&mut pipes);
    let closer = client.clone();
    let (id, eid) = (exec.id.clone(), exec_id.clone());
    io::copy_input(&mut pipes, async move {
        let request = ctrd_client::api::containerd::services::tasks::v1::CloseIoRequest {
            container_id: id,
            exec_id: eid,
            stdin: true,
        };
        let _ = closer.tasks().close_io(request).await;
    });
    let result = async {
        process.start().await?;
        if exec.tty
            && let Some((w, h)) = io::window_size()
        {
            let _ = process.resize(w, h).await;
        }
        let forwarder = forward(
            client.clone(),
            exec.id.clone(),
            Some(exec_id.clone()),
            exec.tty,
        );
        let exit = process.wait().await;
        forwarder.abort();
        let _ = tokio::time::timeout(OUTPUT_GRACE, output).await;
        Ok::<_, Error>(i32::try_from(exit?.code).unwrap_or(255))
    }
    .await;
    drop(raw);
    let deleted = process.delete().await;
    let code = result?;
    deleted?;
    Ok(code)
}
