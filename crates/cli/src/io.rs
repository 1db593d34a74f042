//! Connecting a process's pipes to ours: output copied out, stdin copied in, terminal raw mode,
//! window size and signals forwarded.

use std::os::fd::AsFd;

use ctrd_client::Io;
use rustix::termios::{self, OptionalActions, Termios};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::error::Error;

/// Puts this process's terminal in raw mode until dropped.
pub struct RawMode {
    saved: Termios,
}

impl RawMode {
    /// Raw mode on stdin's terminal; `None` when stdin is not a terminal.
    pub fn enter() -> Result<Option<RawMode>, Error> {
        let stdin = std::io::stdin();
        if !termios::isatty(stdin.as_fd()) {
            return Ok(None);
        }
        let saved =
            termios::tcgetattr(stdin.as_fd()).map_err(|e| Error::Terminal(e.to_string()))?;
        let mut raw = saved.clone();
        raw.make_raw();
        termios::tcsetattr(stdin.as_fd(), OptionalActions::Now, &raw)
            .map_err(|e| Error::Terminal(e.to_string()))?;
        Ok(Some(RawMode { saved }))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(std::io::stdin().as_fd(), OptionalActions::Now, &self.saved);
    }
}

/// The size of our terminal (columns, rows), if stdout or stdin is one.
pub fn window_size() -> Option<(u32, u32)> {
    let size = termios::tcgetwinsize(std::io::stdout().as_fd())
        .or_else(|_| termios::tcgetwinsize(std::io::stdin().as_fd()))
        .ok()?;
    (size.ws_col > 0).then_some((u32::from(size.ws_col), u32::from(size.ws_row)))
}

/// Copies the process's output to ours until it closes; returns when both outputs ended.
pub fn copy_output(io: &mut Io) -> tokio::task::JoinHandle<()> {
    let stdout = io.stdout.take();
    let stderr = io.stderr.take();
    tokio::spawn(async move {
        let out = async {
            if let Some(mut pipe) = stdout {
                pump(&mut pipe, &mut tokio::io::stdout()).await;
            }
        };
        let err = async {
            if let Some(mut pipe) = stderr {
                pump(&mut pipe, &mut tokio::io::stderr()).await;
            }
        };
        tokio::join!(out, err);
    })
}

/// Copies our stdin into the process's, then drops its end; `on_eof` runs at end of input.
pub fn copy_input<F>(io: &mut Io, on_eof: F)
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    if let Some(mut pipe) = io.stdin.take() {
        tokio::spawn(async move {
            let mut stdin = tokio::io::stdin();
            pump(&mut stdin, &mut pipe).await;
            drop(pipe);
            on_eof.await;
        });
    }
}

async fn pump(
    from: &mut (impl tokio::io::AsyncRead + Unpin),
    to: &mut (impl tokio::io::AsyncWrite + Unpin),
) {
    let mut buf = vec![0; 32 * 1024];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if to.write_all(&buf[..n]).await.is_err() || to.flush().await.is_err() {
                    return;
                }
            }
        }
    }
}
