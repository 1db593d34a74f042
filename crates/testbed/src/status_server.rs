//! An HTTP server on 127.0.0.1 that answers every request with one status: a registry that
//! fails (500) or refuses (401) without any registry behind it.

use std::sync::Arc;
use std::thread::JoinHandle;

use crate::Error;

/// The running server; stopped when dropped.
pub struct StatusServer {
    server: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
    port: u16,
}

impl std::fmt::Debug for StatusServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatusServer")
            .field("port", &self.port)
            .finish()
    }
}

impl StatusServer {
    /// Starts a server answering `status` with `body` to every request.
    pub fn start(status: u16, body: &str) -> Result<StatusServer, Error> {
        let server = tiny_http::Server::http("127.0.0.1:0")
            .map_err(|e| Error::setup("HTTP server on 127.0.0.1", e))?;
        let port = server
            .server_addr()
            .to_ip()
            .map(|a| a.port())
            .ok_or_else(|| Error::setup("HTTP server", "not listening on TCP"))?;
        let server = Arc::new(server);
        let thread = {
            let server = server.clone();
            let body = body.to_owned();
            std::thread::spawn(move || {
                while let Ok(request) = server.recv() {
                    let response =
                        tiny_http::Response::from_string(body.clone()).with_status_code(status);
                    let _ = request.respond(response);
                }
            })
        };
        Ok(StatusServer {
            server,
            thread: Some(thread),
            port,
        })
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for StatusServer {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
