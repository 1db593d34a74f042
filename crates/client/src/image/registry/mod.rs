//! Talking to an OCI registry: HTTP or HTTPS (the system's roots plus a CA file), basic auth
//! and the bearer-token flow followed from a 401's challenge, and blob reads that start at an
//! offset (HTTP `Range`), so a cut download resumes where the content store's copy ends.

mod auth;
mod tls;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyDataStream, BodyExt, Empty};
use hyper::StatusCode;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::Mutex;

pub use auth::Credentials;
use auth::{Challenge, TokenAnswer, token_url};

use super::pull::PullOptions;
use crate::Error;
use crate::error::causes;

type Http = HttpClient<TimedConnector, Empty<Bytes>>;

/// How long connecting and the TLS handshake may take: a server that never answers the
/// handshake (a plain-HTTP server that waits for a request line) fails instead of hanging.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

/// A readable blob body.
pub(crate) type BodyReader = Box<dyn AsyncRead + Send + Unpin>;

/// The HTTPS-or-HTTP connector, its connect and handshake bounded by [`CONNECT_TIMEOUT`].
#[derive(Clone)]
struct TimedConnector(HttpsConnector<HttpConnector>);

type Connecting = std::pin::Pin<
    Box<
        dyn std::future::Future<
                Output = Result<
                    hyper_rustls::MaybeHttpsStream<hyper_util::rt::TokioIo<tokio::net::TcpStream>>,
                    Box<dyn std::error::Error + Send + Sync>,
                >,
            > + Send,
    >,
>;

impl tower::Service<hyper::Uri> for TimedConnector {
    type Response = hyper_rustls::MaybeHttpsStream<hyper_util::rt::TokioIo<tokio::net::TcpStream>>;
    type Error = Box<dyn std::error::Error + Send + Sync>;
    type Future = Connecting;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, uri: hyper::Uri) -> Connecting {
        let connecting = self.0.call(uri);
        Box::pin(async move {
            match tokio::time::timeout(CONNECT_TIMEOUT, connecting).await {
                Ok(result) => result,
                Err(_) => Err(format!(
                    "no connection and TLS handshake within {CONNECT_TIMEOUT:?}"
                )
                .into()),
            }
        })
    }
}

/// The largest manifest or index a pull reads (it is held in memory).
const MAX_DOCUMENT: usize = 16 << 20;

/// `host/repository:tag` (or `@digest`), split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reference {
    pub host: String,
    pub repository: String,
    pub reference: String,
}

impl Reference {
    pub(crate) fn parse(text: &str) -> Result<Reference, Error> {
        let bad = |why: &str| Error::Registry {
            reference: text.to_owned(),
            reason: why.to_owned(),
        };
        let (host, rest) = text
            .split_once('/')
            .ok_or_else(|| bad("give host/repository:tag"))?;
        let (repository, reference) = match rest.split_once('@') {
            Some((repo, digest)) => (repo, digest),
            None => match rest.rsplit_once(':') {
                Some((repo, tag)) if !tag.contains('/') => (repo, tag),
                _ => (rest, "latest"),
            },
        };
        if repository.is_empty() || host.is_empty() {
            return Err(bad("give host/repository:tag"));
        }
        // Every part becomes part of a URL: nothing that could change its meaning passes.
        if !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
        {
            return Err(bad("the host holds a character a registry host cannot"));
        }
        if repository
            .split('/')
            .any(|part| part.is_empty() || part == "." || part == "..")
            || !repository.bytes().all(|b| {
                b.is_ascii_lowercase()
                    || b.is_ascii_digit()
                    || matches!(b, b'.' | b'_' | b'-' | b'/')
            })
        {
            return Err(bad(
                "a repository is lowercase letters, digits, '.', '_', '-' and '/' between parts",
            ));
        }
        let tag_ok = reference.len() <= 128
            && !reference.starts_with(['.', '-'])
            && reference
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        if !tag_ok && super::oci::digest_problem(reference).is_some() {
            return Err(bad(
                "a tag is up to 128 letters, digits, '_', '.' and '-' (or give @sha256:<64 hex>)",
            ));
        }
        Ok(Reference {
            host: host.to_owned(),
            repository: repository.to_owned(),
            reference: reference.to_owned(),
        })
    }

    /// Whether the host is this machine (HTTPS falling back to plain HTTP, as containerd does).
    pub(crate) fn is_local(&self) -> bool {
        let name = self
            .host
            .rsplit_once(':')
            .filter(|(_, port)| port.chars().all(|c| c.is_ascii_digit()))
            .map_or(self.host.as_str(), |(name, _)| name);
        name == "localhost" || name.starts_with("127.") || name == "[::1]"
    }
}

/// One registry repository, with the authorization earned so far.
pub(crate) struct Remote {
    http: Http,
    /// `host/v2/repository`, without the scheme.
    base: String,
    /// Speak plain HTTP (asked for, or learnt from a local registry).
    plain: AtomicBool,
    /// Whether a failed TLS handshake may turn into plain HTTP (local hosts, by default).
    fallback: bool,
    text: String,
    credentials: Option<Credentials>,
    /// Whether a client certificate is shown (for the hint when the server refuses it).
    client_cert: bool,
    /// Set once a server asked for a client certificate.
    cert_asked: Arc<AtomicBool>,
    authorization: Mutex<Option<String>>,
}

impl Remote {
    /// A connection to `reference`'s repository as `options` say: plain HTTP when asked,
    /// HTTPS otherwise; for this machine's own registries without a CA file, HTTPS that falls
    /// back to plain HTTP when the server does not speak TLS.
    pub(crate) fn new(
        text: &str,
        reference: &Reference,
        options: &PullOptions,
    ) -> Result<Arc<Remote>, Error> {
        let (config, cert_asked) = tls::client_config(text, options)?;
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(config)
            .https_or_http()
            .enable_http1()
            .build();
        Ok(Arc::new(Remote {
            http: HttpClient::builder(TokioExecutor::new()).build(TimedConnector(connector)),
            base: format!("{}/v2/{}", reference.host, reference.repository),
            plain: AtomicBool::new(options.plain_http),
            fallback: !options.plain_http
                && options.ca_file.is_none()
                && options.client_cert.is_none()
                && reference.is_local(),
            text: text.to_owned(),
            credentials: options.credentials.clone(),
            client_cert: options.client_cert.is_some(),
            cert_asked,
            authorization: Mutex::new(None),
        }))
    }

    fn error(&self, reason: impl Into<String>) -> Error {
        Error::Registry {
            reference: self.text.clone(),
            reason: reason.into(),
        }
    }

    /// The URL of `kind/what` in the scheme in use.
    fn url(&self, kind: &str, what: &str) -> String {
        let scheme = if self.plain.load(Ordering::SeqCst) {
            "http"
        } else {
            "https"
        };
        format!("{scheme}://{}/{kind}/{what}", self.base)
    }

    async fn send(
        &self,
        url: &str,
        accept: &str,
        offset: u64,
        authorization: Option<&str>,
    ) -> Result<hyper::Response<hyper::body::Incoming>, SendError> {
        let mut request = hyper::Request::get(url).header("Accept", accept);
        if offset > 0 {
            request = request.header("Range", format!("bytes={offset}-"));
        }
        if let Some(value) = authorization {
            request = request.header("Authorization", value);
        }
        let request = request
            .body(Empty::new())
            .map_err(|e| SendError::Other(self.error(format!("{url}: {e}"))))?;
        self.http.request(request).await.map_err(|e| {
            // A refusal can surface as the server's alert or, when the connection closed
            // before the request went out, as a cancelled request.
            let refused = refused_client_cert(&e);
            let hint = match (
                refused,
                self.cert_asked.load(Ordering::SeqCst),
                self.client_cert,
            ) {
                (true, _, true) => " (the registry does not accept this client certificate)",
                (false, true, true) => {
                    " (the registry asked for a client certificate and may not accept this one)"
                }
                (true, _, false) | (false, true, false) => {
                    " (the registry wants a client certificate: give --tlscert and --tlskey)"
                }
                (false, false, _) => "",
            };
            let error = self.error(format!("GET {url}: {}{hint}", causes(&e)));
            if e.is_connect() && speaks_no_tls(&e) {
                SendError::NotTls(error)
            } else {
                SendError::Other(error)
            }
        })
    }

    /// GETs `kind/what` (`manifests/TAG`, `blobs/DIGEST`) from `offset`, answering the
    /// registry's challenge once if it asks for auth. The answer is 200, or 206 for a range.
    pub(crate) async fn get(
        &self,
        kind: &str,
        what: &str,
        accept: &str,
        offset: u64,
    ) -> Result<hyper::Response<hyper::body::Incoming>, Error> {
        let mut url = self.url(kind, what);
        let held = self.authorization.lock().await.clone();
        let mut response = match self.send(&url, accept, offset, held.as_deref()).await {
            Err(SendError::NotTls(_)) if self.fallback => {
                self.plain.store(true, Ordering::SeqCst);
                tracing::debug!("{url}: no TLS there; falling back to plain HTTP");
                url = self.url(kind, what);
                self.send(&url, accept, offset, held.as_deref()).await
            }
            other => other,
        }
        .map_err(SendError::into_error)?;
        if response.status() == StatusCode::UNAUTHORIZED {
            let challenge = response
                .headers()
                .get_all("www-authenticate")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .find_map(Challenge::parse);
            let Some(challenge) = challenge else {
                return Err(self.error(format!(
                    "GET {url}: 401 Unauthorized without a challenge we can answer"
                )));
            };
            let value = self.authorize(&challenge).await?;
            *self.authorization.lock().await = Some(value.clone());
            response = self
                .send(&url, accept, offset, Some(&value))
                .await
                .map_err(SendError::into_error)?;
        }
        let status = response.status();
        if status == StatusCode::OK || (offset > 0 && status == StatusCode::PARTIAL_CONTENT) {
            return Ok(response);
        }
        let detail = registry_message(response).await;
        let hint = match status {
            StatusCode::UNAUTHORIZED if self.credentials.is_some() => {
                " (the registry refused these credentials)"
            }
            StatusCode::UNAUTHORIZED => " (give credentials: --user USER:PASSWORD)",
            StatusCode::FORBIDDEN => " (these credentials may not pull it)",
            _ => "",
        };
        Err(self.error(format!("GET {url}: {status}{detail}{hint}")))
    }

    /// The `Authorization` value that answers `challenge`: basic credentials, or a token
    /// fetched from the challenge's realm (with basic credentials if we have them).
    async fn authorize(&self, challenge: &Challenge) -> Result<String, Error> {
        match challenge {
            Challenge::Basic => match &self.credentials {
                Some(c) => Ok(c.basic_header()),
                None => Err(self.error(
                    "the registry wants basic auth: give credentials (--user USER:PASSWORD)",
                )),
            },
            Challenge::Bearer {
                realm,
                service,
                scope,
            } => {
                let url = token_url(realm, service.as_deref(), scope.as_deref());
                let basic = self.credentials.as_ref().map(Credentials::basic_header);
                let response = self
                    .send(&url, "application/json", 0, basic.as_deref())
                    .await
                    .map_err(SendError::into_error)?;
                let status = response.status();
                if status != StatusCode::OK {
                    let hint = if self.credentials.is_some() {
                        " (it refused these credentials)"
                    } else {
                        " (give credentials: --user USER:PASSWORD)"
                    };
                    return Err(self.error(format!("token from {realm}: {status}{hint}")));
                }
                let body = response
                    .into_body()
                    .collect()
                    .await
                    .map_err(|e| self.error(format!("token from {realm}: {}", causes(&e))))?
                    .to_bytes();
                let token = serde_json::from_slice::<TokenAnswer>(&body)
                    .ok()
                    .and_then(TokenAnswer::into_token)
                    .ok_or_else(|| {
                        self.error(format!("token from {realm}: no token in its answer"))
                    })?;
                Ok(format!("Bearer {token}"))
            }
        }
    }

    /// The whole body of `kind/what`, and its media type.
    pub(crate) async fn get_bytes(
        &self,
        kind: &str,
        what: &str,
        accept: &str,
    ) -> Result<(Vec<u8>, String), Error> {
        let response = self.get(kind, what, accept, 0).await?;
        let media_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        // Held in memory: refused past MAX_DOCUMENT bytes.
        let body = http_body_util::Limited::new(response.into_body(), MAX_DOCUMENT)
            .collect()
            .await
            .map_err(|e| {
                self.error(format!(
                    "GET {kind}/{what}: {e} (at most {MAX_DOCUMENT} bytes are accepted)"
                ))
            })?;
        Ok((body.to_bytes().to_vec(), media_type))
    }

    /// Blob `digest` from byte `offset` on (a registry that ignores the range has its
    /// first `offset` bytes skipped here).
    pub(crate) async fn blob_from(&self, digest: &str, offset: u64) -> Result<BodyReader, Error> {
        let response = self.get("blobs", digest, "*/*", offset).await?;
        let partial = response.status() == StatusCode::PARTIAL_CONTENT;
        let stream = futures_util::TryStreamExt::map_err(
            BodyDataStream::new(response.into_body()),
            std::io::Error::other,
        );
        let mut reader: BodyReader = Box::new(tokio_util::io::StreamReader::new(stream));
        if offset > 0 && !partial {
            let skipped = tokio::io::copy(&mut (&mut reader).take(offset), &mut tokio::io::sink())
                .await
                .map_err(|e| self.error(format!("GET blobs/{digest}: {e}")))?;
            if skipped < offset {
                return Err(self.error(format!("GET blobs/{digest}: shorter than {offset} bytes")));
            }
        }
        Ok(reader)
    }
}

/// Why a request got no answer.
enum SendError {
    /// The TLS handshake met a server that does not speak TLS.
    NotTls(Error),
    /// Anything else.
    Other(Error),
}

impl SendError {
    fn into_error(self) -> Error {
        match self {
            SendError::NotTls(e) | SendError::Other(e) => e,
        }
    }
}

/// Whether `error` comes from a TLS handshake answered with something that is not TLS (a
/// plain-HTTP server answering 400).
fn speaks_no_tls(error: &(dyn std::error::Error + 'static)) -> bool {
    tls_error(error, &|e| matches!(e, rustls::Error::InvalidMessage(_)))
}

/// Whether the server ended the handshake over this client's certificate: it wants one and
/// got none, or does not trust the one it got.
fn refused_client_cert(error: &(dyn std::error::Error + 'static)) -> bool {
    use rustls::AlertDescription as Alert;
    tls_error(error, &|e| {
        matches!(
            e,
            rustls::Error::AlertReceived(
                Alert::BadCertificate
                    | Alert::CertificateRequired
                    | Alert::UnknownCA
                    | Alert::CertificateUnknown
            )
        )
    })
}

/// Whether `error` holds a rustls error that `wanted` picks.
fn tls_error(
    error: &(dyn std::error::Error + 'static),
    wanted: &dyn Fn(&rustls::Error) -> bool,
) -> bool {
    // I/O errors nest other errors (tokio-rustls wraps rustls' error in one, the connector
    // in another) without reporting them as their source, so both ways are walked.
    if error.downcast_ref::<rustls::Error>().is_some_and(wanted) {
        return true;
    }
    let inner = error
        .downcast_ref::<std::io::Error>()
        .and_then(|io| io.get_ref())
        .map(|inner| inner as &(dyn std::error::Error + 'static));
    inner.is_some_and(|e| tls_error(e, wanted))
        || error.source().is_some_and(|e| tls_error(e, wanted))
}

/// `: MESSAGE` from a registry's JSON error body (`{"errors":[{"message":...}]}`), or from
/// a short plain-text body; empty otherwise.
async fn registry_message(response: hyper::Response<hyper::body::Incoming>) -> String {
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        #[serde(default)]
        message: String,
    }
    let Ok(body) = response.into_body().collect().await else {
        return String::new();
    };
    let body = body.to_bytes();
    if let Ok(errors) = serde_json::from_slice::<Errors>(&body) {
        if let Some(first) = errors.errors.into_iter().find(|e| !e.message.is_empty()) {
            return format!(": {}", first.message);
        }
        return String::new();
    }
    let text = String::from_utf8_lossy(&body);
    let line = text.lines().next().unwrap_or_default().trim();
    if line.is_empty() || line.len() > 200 {
        String::new()
    } else {
        format!(": {line}")
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use super::{PullOptions, Reference, Remote};

    /// A server on 127.0.0.1 that answers as Go's HTTP servers do: 400 to a TLS handshake,
    /// and here 404 with a registry error to any plain request.
    fn plain_server() -> u16 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("address").port();
        std::thread::spawn(move || {
            for stream in listener.incoming().take(2) {
                let Ok(mut stream) = stream else { continue };
                let mut buffer = [0u8; 4096];
                let n = stream.read(&mut buffer).unwrap_or(0);
                let answer = if n > 0 && buffer[0] == 0x16 {
                    "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n".to_owned()
                } else {
                    let body =
                        r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#;
                    format!(
                        "HTTP/1.1 404 Not Found\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    )
                };
                let _ = stream.write_all(answer.as_bytes());
            }
        });
        port
    }

    #[tokio::test]
    async fn local_registries_without_tls_are_reached_over_plain_http() {
        let text = format!("127.0.0.1:{}/ctrd/none:v1", plain_server());
        let reference = Reference::parse(&text).expect("parse");
        let remote = Remote::new(&text, &reference, &PullOptions::default()).expect("remote");
        let err = remote
            .get("manifests", "v1", "*/*", 0)
            .await
            .expect_err("404");
        let err = err.to_string();
        assert!(err.contains("GET http://127.0.0.1:"), "{err}");
        assert!(err.contains("404 Not Found: manifest unknown"), "{err}");
    }

    #[test]
    fn references_that_would_change_the_url_are_refused() {
        let digest = format!("sha256:{}", "a".repeat(64));
        Reference::parse(&format!("127.0.0.1:5000/library/busybox@{digest}")).expect("digest");
        for bad in [
            "127.0.0.1:5000/../../v2/x:latest",
            "127.0.0.1:5000/a//b:latest",
            "127.0.0.1:5000/Upper:latest",
            "127.0.0.1:5000/a:tag?x=y",
            "127.0.0.1:5000/a:tag#frag",
            "127.0.0.1:5000/a@sha256:..%2F",
            "evil.invalid/x@y/a:1",
            "host with space/a:1",
            "127.0.0.1:5000/a:-tag",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad}");
        }
        let long_tag = format!("127.0.0.1:5000/a:{}", "t".repeat(129));
        assert!(Reference::parse(&long_tag).is_err());
    }

    #[test]
    fn references_split_into_host_repository_and_tag() {
        let r = Reference::parse("127.0.0.1:5000/library/busybox:1.36").expect("parse");
        assert_eq!(r.host, "127.0.0.1:5000");
        assert_eq!(r.repository, "library/busybox");
        assert_eq!(r.reference, "1.36");
        assert!(r.is_local());
        let r = Reference::parse("localhost:5000/app").expect("parse");
        assert_eq!(r.reference, "latest");
        assert!(r.is_local());
        assert!(
            !Reference::parse("registry.example:443/app")
                .expect("parse")
                .is_local()
        );
        assert!(Reference::parse("busybox").is_err());
    }
}
