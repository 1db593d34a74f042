//! A registry token endpoint on 127.0.0.1 (the server side of the registry's bearer-token
//! flow): it answers `GET /token?service=...&scope=...` (credentials in basic auth) and
//! OAuth2's password grant (`POST /token` with a form holding `username` and `password`) with
//! a JWT signed by a key whose certificate the registry trusts, granting what was asked to
//! holders of the right credentials and only `pull` to anonymous callers; wrong credentials
//! get 401.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;

use crate::Error;
use crate::tls::SigningKey;

/// The issuer the tokens name and the registry expects.
pub const ISSUER: &str = "ctrd-testbed";
/// The service name the registry announces and the tokens are for.
pub const SERVICE: &str = "ctrd-testbed-registry";

/// One grant of a token: actions on a repository.
#[derive(Debug, Serialize)]
struct Access {
    r#type: String,
    name: String,
    actions: Vec<String>,
}

#[derive(Debug, Serialize)]
struct Claims {
    iss: &'static str,
    sub: String,
    aud: String,
    exp: u64,
    nbf: u64,
    iat: u64,
    jti: String,
    access: Vec<Access>,
}

/// What the endpoint needs to answer a request.
struct Issuer {
    key: EncodingKey,
    cert_der: String,
    user: String,
    password: String,
    issued: AtomicUsize,
    refused: AtomicUsize,
}

impl Issuer {
    /// `Some(user)` for the right credentials, `Some("")` for none, `None` for wrong ones.
    fn caller(&self, request: &tiny_http::Request) -> Option<String> {
        let header = request
            .headers()
            .iter()
            .find(|h| h.field.equiv("Authorization"));
        let Some(header) = header else {
            return Some(String::new());
        };
        let value = header.value.as_str();
        let encoded = value.strip_prefix("Basic ")?;
        let decoded = STANDARD.decode(encoded.trim()).ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (user, password) = text.split_once(':')?;
        (user == self.user && password == self.password).then(|| user.to_owned())
    }

    fn token(&self, subject: &str, service: &str, scopes: &[String]) -> Result<String, String> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|e| e.to_string())?
            .as_secs();
        let mut access = Vec::new();
        for scope in scopes {
            // repository:NAME:ACTIONS (NAME may hold no ':' in our tests).
            let mut parts = scope.splitn(3, ':');
            let (Some(kind), Some(name), Some(actions)) =
                (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let actions = actions
                .split(',')
                .filter(|a| !subject.is_empty() || *a == "pull")
                .map(str::to_owned)
                .collect();
            access.push(Access {
                r#type: kind.to_owned(),
                name: name.to_owned(),
                actions,
            });
        }
        let n = self.issued.fetch_add(1, Ordering::SeqCst);
        let claims = Claims {
            iss: ISSUER,
            sub: subject.to_owned(),
            aud: service.to_owned(),
            exp: now + 600,
            nbf: now.saturating_sub(60),
            iat: now,
            jti: format!("ctrd-{now}-{n}"),
            access,
        };
        let mut header = Header::new(Algorithm::ES256);
        header.x5c = Some(vec![self.cert_der.clone()]);
        jsonwebtoken::encode(&header, &claims, &self.key).map_err(|e| e.to_string())
    }

    /// `Some(user)` for the right form credentials (OAuth2's password grant), `Some("")` for
    /// none, `None` for wrong ones.
    fn form_caller(&self, user: Option<&str>, password: Option<&str>) -> Option<String> {
        match (user, password) {
            (None, _) => Some(String::new()),
            (Some(user), Some(password)) => {
                (user == self.user && password == self.password).then(|| user.to_owned())
            }
            (Some(_), None) => None,
        }
    }

    fn answer(&self, mut request: tiny_http::Request) {
        let url = request.url().to_owned();
        // GET carries its parameters in the query; POST (OAuth2's password grant, which
        // containerd's own resolver tries first when it has credentials) in a form body.
        let is_post = *request.method() == tiny_http::Method::Post;
        let mut form = String::new();
        if is_post {
            let _ = std::io::Read::read_to_string(request.as_reader(), &mut form);
        }
        let query = if is_post {
            form.as_str()
        } else {
            url.split_once('?').map_or("", |(_, q)| q)
        };
        let mut service = String::new();
        let mut scopes = Vec::new();
        let (mut user, mut password) = (None, None);
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            match &*key {
                "service" => service = value.into_owned(),
                "scope" => scopes.extend(value.split(' ').map(str::to_owned)),
                "username" => user = Some(value.into_owned()),
                "password" => password = Some(value.into_owned()),
                _ => {}
            }
        }
        let caller = if is_post {
            self.form_caller(user.as_deref(), password.as_deref())
        } else {
            self.caller(&request)
        };
        let response = match caller {
            None => {
                self.refused.fetch_add(1, Ordering::SeqCst);
                tiny_http::Response::from_string("{\"errors\":[{\"code\":\"UNAUTHORIZED\"}]}")
                    .with_status_code(401)
            }
            Some(subject) => match self.token(&subject, &service, &scopes) {
                Ok(token) => tiny_http::Response::from_string(
                    serde_json::json!({"token": token, "access_token": token, "expires_in": 600})
                        .to_string(),
                ),
                Err(e) => tiny_http::Response::from_string(e).with_status_code(500),
            },
        };
        let json = tiny_http::Header::from_bytes("Content-Type", "application/json");
        let response = match json {
            Ok(h) => response.with_header(h),
            Err(()) => response,
        };
        let _ = request.respond(response);
    }
}

/// The running endpoint; stopped when dropped.
pub struct TokenServer {
    server: Arc<tiny_http::Server>,
    issuer: Arc<Issuer>,
    thread: Option<JoinHandle<()>>,
    port: u16,
}

impl std::fmt::Debug for TokenServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenServer")
            .field("port", &self.port)
            .finish()
    }
}

impl TokenServer {
    /// Starts the endpoint on a free port of 127.0.0.1, signing with `key`, granting `user`
    /// with `password` everything asked.
    pub fn start(key: &SigningKey, user: &str, password: &str) -> Result<TokenServer, Error> {
        let server = tiny_http::Server::http("127.0.0.1:0")
            .map_err(|e| Error::setup("token endpoint on 127.0.0.1", e))?;
        let port = server
            .server_addr()
            .to_ip()
            .map(|a| a.port())
            .ok_or_else(|| Error::setup("token endpoint", "not listening on TCP"))?;
        let issuer = Arc::new(Issuer {
            key: EncodingKey::from_ec_der(&key.key_der),
            cert_der: STANDARD.encode(&key.cert_der),
            user: user.to_owned(),
            password: password.to_owned(),
            issued: AtomicUsize::new(0),
            refused: AtomicUsize::new(0),
        });
        let server = Arc::new(server);
        let thread = {
            let server = server.clone();
            let issuer = issuer.clone();
            std::thread::spawn(move || {
                while let Ok(request) = server.recv() {
                    issuer.answer(request);
                }
            })
        };
        Ok(TokenServer {
            server,
            issuer,
            thread: Some(thread),
            port,
        })
    }

    /// The realm the registry announces: `http://127.0.0.1:PORT/token`.
    pub fn realm(&self) -> String {
        format!("http://127.0.0.1:{}/token", self.port)
    }

    /// How many tokens it issued.
    pub fn issued(&self) -> usize {
        self.issuer.issued.load(Ordering::SeqCst)
    }

    /// How many requests it refused for wrong credentials.
    pub fn refused(&self) -> usize {
        self.issuer.refused.load(Ordering::SeqCst)
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
