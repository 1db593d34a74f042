//! Kubernetes' CRI conformance suite, `critest` (cri-tools v1.37.0, built into `.testbed/` by
//! `scripts/setup-testbed.sh`), against a [`CriDaemon`](crate::CriDaemon): the images it
//! pulls, built offline from busybox and served by a private [`Registry`], and its JUnit
//! report read back.
//!
//! critest pulls from `registry.k8s.io/e2e-test-images/…`, `gcr.io/k8s-staging-cri-tools/…`
//! and the pause image from both `registry.k8s.io` and `k8s.gcr.io`. [`CritestRegistry`]
//! pushes an image under each of those paths into one registry on 127.0.0.1 and writes a
//! `certs.d` folder whose `hosts.toml` sends all three registries to it over plain HTTP, so
//! critest runs with its own image names (no `-registry-prefix`, which would fold the two
//! pause registries into one name and make the "same image from different registries" tests
//! meaningless), and no pull leaves the machine.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::{Error, ImageArchive, ImageConfig, ImageFile, Registry, repo_root};

/// The registries critest pulls from, all served by a [`CritestRegistry`].
pub const CRITEST_REGISTRIES: [&str; 3] = ["registry.k8s.io", "gcr.io", "k8s.gcr.io"];

/// critest's end-to-end images (`registry.k8s.io/e2e-test-images/NAME`).
const E2E: &str = "e2e-test-images";
/// cri-tools' own images (`gcr.io/k8s-staging-cri-tools/NAME`).
const CRI_TOOLS: &str = "k8s-staging-cri-tools";

/// Debian's static busybox, which the images are built from.
const BUSYBOX: &str = "/bin/busybox";

/// `pgrep NAME` on busybox's `pidof`, one pid a line.
const PGREP: &[u8] = b"#!/bin/sh\n# pgrep NAME for critest: busybox-static has pidof, not pgrep.\n\
    pids=$(pidof \"$1\") || exit 1\nfor p in $pids; do echo \"$p\"; done\n";

/// `ipcs -m`: the shared memory segments of this IPC namespace, from `/proc/sysvipc/shm`.
const IPCS: &[u8] = b"#!/bin/sh\n# ipcs -m for critest: busybox-static has no ipcs.\n\
    echo 'key shmid perms bytes'\n\
    tail -n +2 /proc/sysvipc/shm | while read key id perms size rest; do\n\
    echo \"$key $id $perms $size\"; done\n";

/// One image critest asks for: repository path in the registry, its tags, how it is built.
struct Wanted {
    repository: String,
    tags: Vec<&'static str>,
    config: ImageConfig,
    files: Vec<ImageFile>,
}

impl Wanted {
    fn new(repository: String, tags: &[&'static str]) -> Wanted {
        Wanted {
            repository,
            tags: tags.to_vec(),
            config: ImageConfig::default(),
            files: Vec::new(),
        }
    }

    fn user(mut self, user: &str) -> Wanted {
        self.config.user = user.into();
        self
    }

    fn file(mut self, file: ImageFile) -> Wanted {
        self.files.push(file);
        self
    }

    /// A stand-in for the nginx and httpd images: `/usr/sbin/NAME`, a shell script (so its
    /// process is named `NAME`, as `pidof nginx` expects) that writes its pid to
    /// `/var/run/nginx.pid`, prints `NAME`, and runs busybox's httpd answering `GET /` with 200
    /// on `port`; its command line holds `master process`, as nginx's does.
    fn web_server(mut self, port: u16, name: &str) -> Wanted {
        let program = format!("/usr/sbin/{name}");
        self.config.entrypoint = vec![program.clone()];
        self.config.cmd = vec!["master process".into()];
        let script = format!(
            "#!/bin/sh\n# {name} stand-in for critest: busybox httpd on port {port}.\n\
             mkdir -p /var/run\necho $$ > /var/run/nginx.pid\necho {name}\n\
             httpd -f -p {port} -h /www &\n\
             trap 'kill $! 2>/dev/null; exit 0' TERM INT\nwait $!\n"
        );
        self.file(ImageFile::new(&program, script.as_bytes()).mode(0o755))
            .file(ImageFile::new(
                "/www/index.html",
                b"<html><body>ctrd test web server</body></html>\n",
            ))
    }
}

/// `/etc/passwd` and `/etc/group` of busybox plus `users` (`name:uid:gid`) and `groups`
/// (`name:gid:members`).
fn accounts(users: &[(&str, u32, u32)], groups: &[(&str, u32, &str)]) -> [ImageFile; 2] {
    let mut passwd =
        String::from("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n");
    for (name, uid, gid) in users {
        passwd.push_str(&format!(
            "{name}:x:{uid}:{gid}:{name}:/home/{name}:/bin/sh\n"
        ));
    }
    let mut group = String::from("root:x:0:\nnogroup:x:65534:\n");
    for (name, gid, members) in groups {
        group.push_str(&format!("{name}:x:{gid}:{members}\n"));
    }
    [
        ImageFile::new("/etc/passwd", passwd.as_bytes()),
        ImageFile::new("/etc/group", group.as_bytes()),
    ]
}

/// Every image critest v1.37.0 pulls, as cri-tools' `images/` folder describes them, except
/// `test-image-digest`, which critest names by an upstream manifest digest no offline build
/// can reproduce.
fn wanted(nnp_probe: &[u8], busybox: &[u8]) -> Vec<Wanted> {
    let e2e = |name: &str| format!("{E2E}/{name}");
    let tools = |name: &str| format!("{CRI_TOOLS}/{name}");
    let www_data = accounts(&[("www-data", 33, 33)], &[("www-data", 33, "")]);
    let [predefined_passwd, predefined_group] = accounts(
        &[("default-user", 1000, 1000)],
        &[
            ("default-user", 1000, ""),
            ("group-defined-in-image", 50000, "default-user"),
        ],
    );
    let mut images = vec![
        // busybox-static has no `pgrep` nor `ipcs`, which critest's checks call, and links its
        // applets as symbolic links, so masking `/bin/ls` would mask busybox itself: `ls` is a
        // file of its own here, as in the upstream image (hard links).
        Wanted::new(e2e("busybox"), &["1.29-2"])
            .file(ImageFile::new("/bin/pgrep", PGREP).mode(0o755))
            .file(ImageFile::new("/bin/ipcs", IPCS).mode(0o755))
            .file(ImageFile::new("/bin/ls", busybox).mode(0o755)),
        Wanted::new(e2e("nginx"), &["1.14-2"]).web_server(80, "nginx"),
        Wanted::new(e2e("httpd"), &["2.4.39-4"]).web_server(80, "httpd"),
        // A set-user-ID root program printing its effective uid: root unless no_new_privs.
        Wanted {
            config: ImageConfig {
                cmd: vec!["/nnp-probe".into()],
                ..ImageConfig::default()
            },
            ..Wanted::new(e2e("nonewprivs"), &["1.3"])
        }
        .file(ImageFile::new("/nnp-probe", nnp_probe).mode(0o4755)),
        Wanted::new(tools(&format!("hostnet-nginx-{}", go_arch())), &["latest"])
            .web_server(12003, "nginx"),
        Wanted::new(tools("test-image-user-uid"), &["latest"]).user("1002"),
        Wanted::new(tools("test-image-user-username"), &["latest"])
            .user("www-data")
            .file(www_data[0].clone())
            .file(www_data[1].clone()),
        Wanted::new(tools("test-image-user-uid-group"), &["latest"]).user("1003:1004"),
        Wanted::new(tools("test-image-user-username-group"), &["latest"])
            .user("www-data:1004")
            .file(www_data[0].clone())
            .file(www_data[1].clone()),
        Wanted::new(tools("test-image-predefined-group"), &["latest"])
            .user("1000")
            .file(predefined_passwd)
            .file(predefined_group),
        // Tags of one repository that are different images, and one image under three tags.
        Wanted::new(tools("test-image-tags"), &["1", "2", "3"])
            .file(ImageFile::new("/same-image", b"same-image\n")),
        Wanted::new(tools("test-image-tag"), &["test"]).file(ImageFile::new("/test", b"test\n")),
        Wanted::new(tools("test-image-tag"), &["all"]).file(ImageFile::new("/all", b"all\n")),
        Wanted::new(tools("test-image-latest"), &["latest"])
            .file(ImageFile::new("/test-image-latest", b"test-image-latest\n")),
    ];
    for n in 1..=3 {
        let name = format!("test-image-{n}");
        images.push(
            Wanted::new(tools(&name), &["latest"])
                .file(ImageFile::new(&format!("/{name}"), name.as_bytes())),
        );
    }
    images
}

/// Go's name of this machine's architecture (in `hostnet-nginx-ARCH`).
fn go_arch() -> &'static str {
    crate::image::oci_arch()
}

/// A registry on 127.0.0.1 holding every image critest pulls, and the `certs.d` folder that
/// points containerd's CRI at it for `registry.k8s.io`, `gcr.io` and `k8s.gcr.io`.
#[derive(Debug)]
pub struct CritestRegistry {
    registry: Registry,
    certs_d: tempfile::TempDir,
}

impl CritestRegistry {
    /// Starts the registry, builds and pushes every image (about 20 tags of busybox-based
    /// images), and writes the `certs.d` folder.
    pub fn start() -> Result<CritestRegistry, Error> {
        let registry = Registry::start()?;
        let probe = build_nnp_probe()?;
        let busybox = std::fs::read(BUSYBOX).map_err(|e| Error::io(BUSYBOX, e))?;
        let pause = ImageArchive::pause("registry.k8s.io/pause:3.9")?;
        registry.push(&pause.path(), "pause", "3.9")?;
        for image in wanted(&probe, &busybox) {
            let name = format!("{}:{}", image.repository, image.tags[0]);
            let archive = ImageArchive::busybox_with(&name, &image.config, &image.files)?;
            for tag in &image.tags {
                registry.push(&archive.path(), &image.repository, tag)?;
            }
        }
        let certs_d = tempfile::Builder::new()
            .prefix("ctrd-certs.d-")
            .tempdir_in("/tmp")
            .map_err(|e| Error::io("/tmp", e))?;
        for host in CRITEST_REGISTRIES {
            let dir = certs_d.path().join(host);
            std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
            let file = dir.join("hosts.toml");
            // The registry as both the host and the server: no fallback to the real one.
            let url = format!("http://{}", registry.host());
            std::fs::write(
                &file,
                format!(
                    "server = \"{url}\"\n\n[host.\"{url}\"]\n  capabilities = [\"pull\", \"resolve\"]\n"
                ),
            )
            .map_err(|e| Error::io(&file, e))?;
        }
        Ok(CritestRegistry { registry, certs_d })
    }

    /// The `certs.d` folder for CRI's registry `config_path`.
    pub fn certs_d(&self) -> &Path {
        self.certs_d.path()
    }

    /// `127.0.0.1:PORT` of the registry.
    pub fn host(&self) -> String {
        self.registry.host()
    }
}

/// The program of the `nonewprivs` image: prints `Effective uid: N` (cri-tools' test reads
/// that line); static, since the image holds no C library.
fn build_nnp_probe() -> Result<Vec<u8>, Error> {
    crate::static_c::compile(
        "nnp-probe",
        "#include <stdio.h>\n#include <unistd.h>\n\
         int main(void) { printf(\"Effective uid: %d\\n\", (int)geteuid()); return 0; }\n",
    )
}

/// How one critest spec ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It passed.
    Passed,
    /// It was skipped: by `-ginkgo.skip`, or by the spec itself (its message).
    Skipped(String),
    /// It failed, panicked or timed out (the first line of its message).
    Failed(String),
}

/// One spec of a critest run.
#[derive(Debug, Clone, PartialEq)]
pub struct SpecResult {
    /// The spec's text, such as `[k8s.io] Container runtime should support … [Conformance]`
    /// (suite nodes keep their `[BeforeSuite]` name).
    pub name: String,
    /// How it ended.
    pub outcome: Outcome,
    /// How long it took.
    pub seconds: f64,
}

/// The critest binary and how to run it.
#[derive(Debug, Clone)]
pub struct Critest {
    program: PathBuf,
}

/// What one critest run covers.
#[derive(Debug, Clone, Default)]
pub struct CritestArgs {
    /// `-ginkgo.focus` regular expressions (ORed); none runs every spec.
    pub focus: Vec<String>,
    /// `-ginkgo.skip` regular expressions (ORed).
    pub skip: Vec<String>,
    /// `-ginkgo.flake-attempts` (0: one attempt).
    pub flake_attempts: u32,
    /// `-ginkgo.timeout` for the whole suite.
    pub timeout: Duration,
    /// Further arguments, last (such as `-ginkgo.sleep-on-failure=60s` to look at a failure).
    pub extra: Vec<String>,
}

impl Critest {
    /// `.testbed/critest/usr/bin/critest`, or the program `CTRD_CRITEST_BIN` names.
    pub fn find() -> Result<Critest, Error> {
        let program = std::env::var_os("CTRD_CRITEST_BIN").map_or_else(
            || repo_root().join(".testbed/critest/usr/bin/critest"),
            PathBuf::from,
        );
        if program.is_file() {
            Ok(Critest { program })
        } else {
            Err(Error::Missing {
                what: "critest (cri-tools v1.37.0)".into(),
                path: program,
            })
        }
    }

    /// Runs critest against the CRI socket `socket` with runtime handler `handler`, writing
    /// its output and JUnit report into `out_dir`, and returns every spec's result. critest
    /// failing specs is not an error; critest leaving no report is.
    pub fn run(
        &self,
        socket: &Path,
        handler: &str,
        args: &CritestArgs,
        out_dir: &Path,
    ) -> Result<Vec<SpecResult>, Error> {
        std::fs::create_dir_all(out_dir).map_err(|e| Error::io(out_dir, e))?;
        let endpoint = format!("unix://{}", socket.display());
        let log_path = out_dir.join("critest.log");
        let log = std::fs::File::create(&log_path).map_err(|e| Error::io(&log_path, e))?;
        let err = log.try_clone().map_err(|e| Error::io(&log_path, e))?;
        let mut command = Command::new(&self.program);
        command
            .current_dir(out_dir)
            .arg(format!("-runtime-endpoint={endpoint}"))
            .arg(format!("-image-endpoint={endpoint}"))
            .arg(format!("-runtime-handler={handler}"))
            // critest v1.37.0 accepts -report-dir but writes nothing there; ginkgo's own flag.
            .arg(format!(
                "-ginkgo.junit-report={}",
                out_dir.join("junit.xml").display()
            ))
            .arg("-ginkgo.no-color")
            .arg("-ginkgo.v")
            .arg(format!(
                "-ginkgo.timeout={}s",
                args.timeout.as_secs().max(60)
            ));
        for focus in &args.focus {
            command.arg(format!("-ginkgo.focus={focus}"));
        }
        for skip in &args.skip {
            command.arg(format!("-ginkgo.skip={skip}"));
        }
        if args.flake_attempts > 1 {
            command.arg(format!("-ginkgo.flake-attempts={}", args.flake_attempts));
        }
        command.args(&args.extra);
        let started = Instant::now();
        let status = command
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .status()
            .map_err(|e| Error::io(&self.program, e))?;
        let report = junit_report(out_dir).ok_or_else(|| Error::Critest {
            what: format!("run ({status}, after {:.0?})", started.elapsed()),
            reason: format!(
                "no JUnit report in {}; see {}",
                out_dir.display(),
                log_path.display()
            ),
        })?;
        let text = std::fs::read_to_string(&report).map_err(|e| Error::io(&report, e))?;
        parse_junit(&text).map_err(|reason| Error::Critest {
            what: "JUnit report".into(),
            reason: format!("{}: {reason}", report.display()),
        })
    }
}

/// The JUnit file critest wrote into `dir`.
fn junit_report(dir: &Path) -> Option<PathBuf> {
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "xml"))
}

/// Every spec of a ginkgo JUnit report. Suite nodes (`[BeforeSuite]`, …) are kept only when
/// they did not pass.
pub fn parse_junit(text: &str) -> Result<Vec<SpecResult>, String> {
    let doc = roxmltree::Document::parse(text).map_err(|e| e.to_string())?;
    let mut specs = Vec::new();
    for case in doc.descendants().filter(|n| n.has_tag_name("testcase")) {
        let raw = case.attribute("name").unwrap_or_default();
        let status = case.attribute("status").unwrap_or_default();
        let seconds = case
            .attribute("time")
            .and_then(|t| t.parse().ok())
            .unwrap_or(0.0);
        let message = |tag: &str| {
            case.children()
                .find(|n| n.has_tag_name(tag))
                .map(|n| {
                    let text = n.attribute("message").or(n.text()).unwrap_or_default();
                    text.lines().next().unwrap_or_default().trim().to_owned()
                })
                .unwrap_or_default()
        };
        let outcome = match status {
            "passed" => Outcome::Passed,
            "skipped" | "pending" => Outcome::Skipped(message("skipped")),
            _ => {
                let failure = message("failure");
                Outcome::Failed(if failure.is_empty() {
                    format!("{status}: {}", message("error"))
                } else {
                    failure
                })
            }
        };
        let name = match raw.strip_prefix("[It] ") {
            Some(name) => name.trim_start_matches("[k8s.io] ").to_owned(),
            None if outcome == Outcome::Passed => continue,
            None => raw.to_owned(),
        };
        specs.push(SpecResult {
            name,
            outcome,
            seconds,
        });
    }
    Ok(specs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn junit_specs_and_their_outcomes() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<testsuites><testsuite name="CRI validation">
 <testcase name="[BeforeSuite]" status="passed" time="0.1"></testcase>
 <testcase name="[It] [k8s.io] Runtime info should return version info [Conformance]" status="passed" time="0.5"></testcase>
 <testcase name="[It] [k8s.io] AppArmor should fail" status="skipped" time="0"><skipped message="skipped - AppArmor is not enabled"></skipped></testcase>
 <testcase name="[It] [k8s.io] Image pulled" status="failed" time="2"><failure message="failed to pull image&#xA;more" type="failed">long</failure></testcase>
 <testcase name="[AfterSuite]" status="timedout" time="60"><error message="timeout" type="timedout"></error></testcase>
</testsuite></testsuites>"#;
        let specs = parse_junit(xml).expect("parses");
        let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "Runtime info should return version info [Conformance]",
                "AppArmor should fail",
                "Image pulled",
                "[AfterSuite]"
            ]
        );
        assert_eq!(
            specs[1].outcome,
            Outcome::Skipped("skipped - AppArmor is not enabled".into())
        );
        assert_eq!(
            specs[2].outcome,
            Outcome::Failed("failed to pull image".into())
        );
        assert_eq!(
            specs[3].outcome,
            Outcome::Failed("timedout: timeout".into())
        );
    }
}
