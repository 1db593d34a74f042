//! A TCP proxy on 127.0.0.1 that cuts one connection once, after it has carried a given
//! number of bytes from the server: a download dropped mid-way, for resume tests. It counts
//! what it carries (blob requests, bytes from the server), so a test can also see what a
//! client downloaded.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::Error;

#[derive(Debug, Default)]
struct Shared {
    stop: AtomicBool,
    cut: AtomicBool,
    cuts: AtomicUsize,
    connections: AtomicUsize,
    ranges: AtomicUsize,
    blobs: AtomicUsize,
    from_server: AtomicU64,
    open: Mutex<Vec<TcpStream>>,
}

/// The running proxy; dropping it closes every connection and stops it.
#[derive(Debug)]
pub struct CutProxy {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    port: u16,
}

/// Copies server to client; once `cut_after` bytes went through this connection and no
/// connection was cut yet, shuts both sides down.
fn server_to_client(
    mut from: TcpStream,
    mut to: TcpStream,
    cut_after: u64,
    shared: &Shared,
) -> std::io::Result<()> {
    let mut carried = 0u64;
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let mut n = from.read(&mut buffer)?;
        if n == 0 {
            let _ = to.shutdown(Shutdown::Write);
            return Ok(());
        }
        let mut cut_now = false;
        if !shared.cut.load(Ordering::SeqCst) && carried + n as u64 >= cut_after {
            cut_now = !shared.cut.swap(true, Ordering::SeqCst);
            if cut_now {
                n = usize::try_from(cut_after.saturating_sub(carried)).unwrap_or(n);
            }
        }
        to.write_all(&buffer[..n])?;
        carried += n as u64;
        shared.from_server.fetch_add(n as u64, Ordering::SeqCst);
        if cut_now {
            shared.cuts.fetch_add(1, Ordering::SeqCst);
            let _ = to.shutdown(Shutdown::Both);
            let _ = from.shutdown(Shutdown::Both);
            return Ok(());
        }
    }
}

/// Copies client to server, counting requests with a `Range: bytes=` header and requests
/// for blobs (`/v2/NAME/blobs/sha256:...`). The last bytes of each read are kept, so a needle
/// split between two reads is still counted once.
fn client_to_server(mut from: TcpStream, mut to: TcpStream, shared: &Shared) {
    const RANGE: &[u8] = b"\r\nrange: bytes=";
    const BLOB: &[u8] = b"/blobs/sha256:";
    let keep = RANGE.len().max(BLOB.len()) - 1;
    let count =
        |text: &[u8], needle: &[u8]| text.windows(needle.len()).filter(|w| *w == needle).count();
    let mut buffer = vec![0u8; 16 * 1024];
    let mut tail: Vec<u8> = Vec::new();
    while let Ok(n) = from.read(&mut buffer) {
        if n == 0 {
            break;
        }
        let mut text = std::mem::take(&mut tail);
        let before = (count(&text, RANGE), count(&text, BLOB));
        text.extend(buffer[..n].to_ascii_lowercase());
        shared
            .ranges
            .fetch_add(count(&text, RANGE) - before.0, Ordering::SeqCst);
        shared
            .blobs
            .fetch_add(count(&text, BLOB) - before.1, Ordering::SeqCst);
        tail = text[text.len().saturating_sub(keep)..].to_vec();
        if to.write_all(&buffer[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

fn serve(listener: TcpListener, target: u16, cut_after: u64, shared: Arc<Shared>) {
    for client in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(client) = client else { continue };
        let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
            let _ = client.shutdown(Shutdown::Both);
            continue;
        };
        shared.connections.fetch_add(1, Ordering::SeqCst);
        let clones = (
            client.try_clone(),
            server.try_clone(),
            client.try_clone(),
            server.try_clone(),
        );
        let (Ok(client_w), Ok(server_r), Ok(keep_c), Ok(keep_s)) = clones else {
            continue;
        };
        if let Ok(mut open) = shared.open.lock() {
            open.push(keep_c);
            open.push(keep_s);
        }
        let requests = shared.clone();
        std::thread::spawn(move || client_to_server(client, server, &requests));
        let shared = shared.clone();
        std::thread::spawn(move || {
            let _ = server_to_client(server_r, client_w, cut_after, &shared);
        });
    }
}

impl CutProxy {
    /// Proxies a free port of 127.0.0.1 to `127.0.0.1:target`, cutting the first connection
    /// that carries `cut_after` bytes back from the server.
    pub fn start(target: u16, cut_after: u64) -> Result<CutProxy, Error> {
        let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| Error::io("127.0.0.1:0", e))?;
        let port = listener
            .local_addr()
            .map_err(|e| Error::io("127.0.0.1:0", e))?
            .port();
        let shared = Arc::new(Shared::default());
        let thread = {
            let shared = shared.clone();
            std::thread::spawn(move || serve(listener, target, cut_after, shared))
        };
        Ok(CutProxy {
            shared,
            thread: Some(thread),
            port,
        })
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// How many connections it cut (0 or 1).
    pub fn cuts(&self) -> usize {
        self.shared.cuts.load(Ordering::SeqCst)
    }

    /// How many requests it carried with a `Range: bytes=` header (resumed downloads).
    pub fn range_requests(&self) -> usize {
        self.shared.ranges.load(Ordering::SeqCst)
    }

    /// How many requests for a blob (`/v2/NAME/blobs/sha256:...`) it carried.
    pub fn blob_requests(&self) -> usize {
        self.shared.blobs.load(Ordering::SeqCst)
    }

    /// How many bytes it carried from the server.
    pub fn bytes_from_server(&self) -> u64 {
        self.shared.from_server.load(Ordering::SeqCst)
    }

    /// A proxy that never cuts: it only counts.
    pub fn counting(target: u16) -> Result<CutProxy, Error> {
        CutProxy::start(target, u64::MAX)
    }

    /// How many connections it carried.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }
}

impl Drop for CutProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        if let Ok(open) = self.shared.open.lock() {
            for stream in open.iter() {
                let _ = stream.shutdown(Shutdown::Both);
            }
        }
    }
}
