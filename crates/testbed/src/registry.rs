//! A private OCI registry (Debian's `docker-registry`) on 127.0.0.1, over plain HTTP or HTTPS
//! with a test CA (optionally wanting a client certificate the CA signed), open or behind basic auth (htpasswd, bcrypt) or the bearer-token flow (a
//! token endpoint of the test bed), and pushing test images into it with `skopeo`.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::Error;
use crate::tls::TlsFiles;
use crate::token::TokenServer;

/// Who may use a test registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RegistryAuth {
    /// Anyone.
    #[default]
    Open,
    /// Basic auth against an htpasswd file holding [`Registry::USER`].
    Basic,
    /// The bearer-token flow: the registry sends clients to a token endpoint the test bed
    /// serves on 127.0.0.1, which grants pulls to anyone and everything to [`Registry::USER`].
    Token,
}

/// How to start a test registry.
#[derive(Debug, Clone, Copy, Default)]
pub struct RegistryOptions {
    /// Serve HTTPS with a certificate from a CA made for it ([`Registry::ca_file`]).
    pub tls: bool,
    /// With `tls`: refuse clients without a client certificate the test CA signed
    /// ([`Registry::client_cert`]; `docker-registry`'s `http.tls.clientcas`).
    pub client_certs: bool,
    /// Who may use it.
    pub auth: RegistryAuth,
}

/// A registry on a free port of 127.0.0.1, stopped and removed when dropped.
#[derive(Debug)]
pub struct Registry {
    child: Child,
    port: u16,
    tls: Option<TlsFiles>,
    client_certs: bool,
    auth: RegistryAuth,
    token: Option<TokenServer>,
    _dir: tempfile::TempDir,
}

impl Registry {
    /// The user of a registry with auth.
    pub const USER: &str = "ctrd";
    /// That user's password.
    pub const PASSWORD: &str = "s3cret-pull";

    /// Starts an open plain-HTTP `docker-registry` with its storage in a temporary folder.
    pub fn start() -> Result<Registry, Error> {
        Registry::start_with(RegistryOptions::default())
    }

    /// Starts `docker-registry` as `options` say, with its storage in a temporary folder.
    pub fn start_with(options: RegistryOptions) -> Result<Registry, Error> {
        let program = Path::new("/usr/bin/docker-registry");
        if !program.is_file() {
            return Err(Error::Missing {
                what: "docker-registry".into(),
                path: program.into(),
            });
        }
        let dir = tempfile::Builder::new()
            .prefix("ctrd-registry-")
            .tempdir_in("/tmp")
            .map_err(|e| Error::io("/tmp", e))?;
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| Error::io("127.0.0.1:0", e))?
            .port();
        let mut text = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n\
             http:\n  addr: 127.0.0.1:{port}\n",
            dir.path().join("data").display()
        );
        if options.client_certs && !options.tls {
            return Err(Error::setup(
                "test registry",
                "client certificates need TLS (RegistryOptions::tls)",
            ));
        }
        let tls = if options.tls {
            let files = crate::tls::make_server_certs(dir.path())?;
            text.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                files.server_cert.display(),
                files.server_key.display()
            ));
            if options.client_certs {
                text.push_str(&format!(
                    "    clientcas:\n      - {}\n",
                    files.ca_cert.display()
                ));
            }
            Some(files)
        } else {
            None
        };
        let mut token = None;
        match options.auth {
            RegistryAuth::Open => {}
            RegistryAuth::Basic => {
                let hash = bcrypt::hash(Registry::PASSWORD, 5)
                    .map_err(|e| Error::setup("htpasswd entry", e))?;
                let htpasswd = dir.path().join("htpasswd");
                std::fs::write(&htpasswd, format!("{}:{hash}\n", Registry::USER))
                    .map_err(|e| Error::io(&htpasswd, e))?;
                text.push_str(&format!(
                    "auth:\n  htpasswd:\n    realm: ctrd-testbed\n    path: {}\n",
                    htpasswd.display()
                ));
            }
            RegistryAuth::Token => {
                let key = crate::tls::make_signing_key()?;
                let bundle = dir.path().join("token.crt");
                std::fs::write(&bundle, &key.cert_pem).map_err(|e| Error::io(&bundle, e))?;
                let server = TokenServer::start(&key, Registry::USER, Registry::PASSWORD)?;
                text.push_str(&format!(
                    "auth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n    \
                     rootcertbundle: {}\n",
                    server.realm(),
                    crate::token::SERVICE,
                    crate::token::ISSUER,
                    bundle.display()
                ));
                token = Some(server);
            }
        }
        let config = dir.path().join("config.yml");
        std::fs::write(&config, text).map_err(|e| Error::io(&config, e))?;
        let log = dir.path().join("registry.log");
        let out = std::fs::File::create(&log).map_err(|e| Error::io(&log, e))?;
        let err = out.try_clone().map_err(|e| Error::io(&log, e))?;
        let child = Command::new(program)
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| Error::io(program, e))?;
        let mut registry = Registry {
            child,
            port,
            tls,
            client_certs: options.client_certs,
            auth: options.auth,
            token,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline || matches!(registry.child.try_wait(), Ok(Some(_))) {
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                return Err(Error::io(
                    program,
                    std::io::Error::other(format!("registry did not start: {text}")),
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(registry)
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The CA certificate (PEM) that signed its server certificate, when it serves HTTPS.
    pub fn ca_file(&self) -> Option<PathBuf> {
        self.tls.as_ref().map(|t| t.ca_cert.clone())
    }

    /// A client certificate and its key (PEM) that it accepts, when it serves HTTPS.
    pub fn client_cert(&self) -> Option<(PathBuf, PathBuf)> {
        self.tls
            .as_ref()
            .map(|t| (t.client_cert.clone(), t.client_key.clone()))
    }

    /// `user:password` that it accepts, when it wants auth.
    pub fn credentials(&self) -> Option<String> {
        (self.auth != RegistryAuth::Open)
            .then(|| format!("{}:{}", Registry::USER, Registry::PASSWORD))
    }

    /// Its token endpoint, under [`RegistryAuth::Token`].
    pub fn token_server(&self) -> Option<&TokenServer> {
        self.token.as_ref()
    }

    /// Pushes the OCI image archive at `archive` as `repository:tag` with `skopeo`; returns
    /// the reference to pull (`127.0.0.1:PORT/repository:tag`).
    pub fn push(&self, archive: &Path, repository: &str, tag: &str) -> Result<String, Error> {
        self.push_source(
            &format!("oci-archive:{}", archive.display()),
            repository,
            tag,
            false,
        )
    }

    /// Pushes a multi-platform archive ([`crate::ImageArchive::multi_platform`], named `tag`
    /// in its layout) with every platform, as `repository:tag`; returns the reference.
    pub fn push_index(&self, archive: &Path, repository: &str, tag: &str) -> Result<String, Error> {
        self.push_source(
            &format!("oci-archive:{}:{tag}", archive.display()),
            repository,
            tag,
            true,
        )
    }

    /// Pushes what `skopeo` reads from `source` (`oci:DIR:TAG`, `oci-archive:FILE`, ...) as
    /// `repository:tag`; `all` pushes every platform of an index.
    pub fn push_source(
        &self,
        source: &str,
        repository: &str,
        tag: &str,
        all: bool,
    ) -> Result<String, Error> {
        let reference = format!("{}/{repository}:{tag}", self.host());
        let mut command = Command::new("skopeo");
        command.args(["copy", "--quiet", "--dest-tls-verify=false"]);
        if all {
            command.arg("--all");
        }
        if let Some(credentials) = self.credentials() {
            command.arg(format!("--dest-creds={credentials}"));
        }
        if let (true, Some(tls)) = (self.client_certs, &self.tls) {
            // skopeo takes `*.cert` and `*.key` pairs from a folder.
            command.arg(format!("--dest-cert-dir={}", tls.skopeo_dir()?.display()));
        }
        let out = command
            .arg(source)
            .arg(format!("docker://{reference}"))
            .stdin(Stdio::null())
            .output()
            .map_err(|_| Error::Missing {
                what: "skopeo".into(),
                path: "skopeo".into(),
            })?;
        if !out.status.success() {
            return Err(Error::io(
                "skopeo copy",
                std::io::Error::other(String::from_utf8_lossy(&out.stderr).into_owned()),
            ));
        }
        Ok(reference)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
