//! The core shared by the blocking and async commands: what to run, and what its result means.
//!
//! Each command is built into a [`Plan`] (arguments, standard I/O, fds to pass, pid file, where
//! runc's error will be written), run by one of the two executors, then finished here: exit
//! status checked, error message read back, output parsed.

use std::ffi::{OsStr, OsString};
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

use command_fds::{CommandFdExt, FdMapping};
use serde::de::DeserializeOwned;

use crate::config::{Config, LogFormat};
use crate::io::ProcessIo;
use crate::opts::{CheckpointOptions, CreateOptions, CriuOptions, ExecOptions, RestoreOptions};
use crate::{Error, id};

/// The systemd variable runc must never see from a shim's environment (see [`Plan::command`]).
pub(crate) const NOTIFY_SOCKET: &str = "NOTIFY_SOCKET";

/// One runc invocation, ready to run.
pub(crate) struct Plan {
    /// `runc <sub> <args>` for messages.
    pub display: String,
    args: Vec<OsString>,
    /// Bytes for runc's standard input.
    pub stdin: Option<Vec<u8>>,
    /// The container process's streams; without them, runc's output is captured.
    io: Option<ProcessIo>,
    /// Files runc gets as fds 3, 4, ... (moved into the command when it is built).
    fds: Vec<OwnedFd>,
    pid_file: Option<PidFile>,
    log: Option<LogCursor>,
    /// Whether the configured timeout applies.
    pub limited: bool,
}

/// What a run produced.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// A finished, successful command.
#[derive(Debug)]
pub(crate) struct Finished {
    pub stdout: Vec<u8>,
    /// The pid runc wrote, for commands that start a process.
    pub pid: Option<u32>,
}

enum PidFile {
    Temp(tempfile::TempDir),
    Given(PathBuf),
}

impl PidFile {
    fn path(&self) -> PathBuf {
        match self {
            PidFile::Temp(dir) => dir.path().join("pid"),
            PidFile::Given(path) => path.clone(),
        }
    }
}

/// Where runc's log for this call is, and where this call's part of it starts.
struct LogCursor {
    path: PathBuf,
    format: LogFormat,
    offset: u64,
    _temp: Option<tempfile::TempDir>,
}

impl Plan {
    fn new(config: &Config, sub: &str, private_log: bool) -> Result<Plan, Error> {
        let mut args = Vec::new();
        let log = match (&config.log, config.log_format) {
            (Some(path), format) => Some(LogCursor {
                offset: std::fs::metadata(path).map(|m| m.len()).unwrap_or(0),
                path: path.clone(),
                format: format.unwrap_or(LogFormat::Text),
                _temp: None,
            }),
            (None, _) if private_log => {
                let dir = tempfile::Builder::new()
                    .prefix("ctrd-runc-")
                    .tempdir()
                    .map_err(|e| Error::setup("making a folder for runc's log", e))?;
                Some(LogCursor {
                    path: dir.path().join("log.json"),
                    format: LogFormat::Json,
                    offset: 0,
                    _temp: Some(dir),
                })
            }
            (None, _) => None,
        };
        args.extend(config.global_args());
        if let Some(log) = log.as_ref().filter(|l| l._temp.is_some()) {
            args.extend(["--log".into(), log.path.clone().into_os_string()]);
            args.extend(["--log-format".into(), "json".into()]);
        }
        args.push(sub.into());
        Ok(Plan {
            display: format!("runc {sub}"),
            args,
            stdin: None,
            io: None,
            fds: Vec::new(),
            pid_file: None,
            log,
            limited: true,
        })
    }

    /// A plan for a command whose output is captured.
    fn captured(config: &Config, sub: &str) -> Result<Plan, Error> {
        Plan::new(config, sub, false)
    }

    /// A plan for a command that starts a container process with `io`.
    fn starting(config: &Config, sub: &str, io: Option<ProcessIo>) -> Result<Plan, Error> {
        let mut plan = Plan::new(config, sub, true)?;
        plan.io = Some(io.unwrap_or_default());
        Ok(plan)
    }

    fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    fn flag(&mut self, on: bool, flag: &str) -> &mut Self {
        if on {
            self.arg(flag);
        }
        self
    }

    fn opt(&mut self, flag: &str, value: Option<impl AsRef<OsStr>>) -> &mut Self {
        if let Some(value) = value {
            self.arg(flag).arg(value);
        }
        self
    }

    /// The positional id, last on the command line.
    fn id(&mut self, id: &str) -> Result<&mut Self, Error> {
        id::validate(id)?;
        self.display.push(' ');
        self.display.push_str(id);
        Ok(self.arg(id))
    }

    fn pid_file(&mut self, given: Option<PathBuf>) -> Result<&mut Self, Error> {
        let file = match given {
            Some(path) => PidFile::Given(path),
            None => PidFile::Temp(
                tempfile::Builder::new()
                    .prefix("ctrd-runc-")
                    .tempdir()
                    .map_err(|e| Error::setup("making a folder for the pid file", e))?,
            ),
        };
        let path = file.path();
        self.pid_file = Some(file);
        Ok(self.arg("--pid-file").arg(path))
    }

    /// Passes `files` as fds 3, 4, ... and tells runc to keep them.
    fn preserve(&mut self, files: Vec<OwnedFd>) -> &mut Self {
        if !files.is_empty() {
            self.arg("--preserve-fds").arg(files.len().to_string());
            self.fds.extend(files);
        }
        self
    }

    /// Passes `data` to runc as a file that exists only in memory, returning its path as
    /// runc will see it. It takes the fd after the preserved ones.
    fn memory_file(&mut self, name: &str, data: &[u8]) -> Result<PathBuf, Error> {
        use nix::sys::memfd::{MFdFlags, memfd_create};
        let fd = memfd_create(name, MFdFlags::MFD_CLOEXEC)
            .map_err(|e| Error::setup("making an in-memory file", e.into()))?;
        let mut file = std::fs::File::from(fd);
        std::io::Write::write_all(&mut file, data)
            .map_err(|e| Error::setup("writing an in-memory file", e))?;
        let number = 3 + self.fds.len();
        self.fds.push(OwnedFd::from(file));
        Ok(PathBuf::from(format!("/proc/self/fd/{number}")))
    }

    /// The command to spawn, consuming the standard streams and fds into it.
    pub fn command(&mut self, config: &Config) -> Command {
        let mut command = Command::new(&config.binary);
        command.args(&self.args);
        // containerd run by systemd as a notify service hands `NOTIFY_SOCKET` to its shims.
        // runc seeing it makes `create` set up a notify socket in the container and `start`
        // wait for the container to send READY=1, which an ordinary container never does.
        command.env_remove(NOTIFY_SOCKET);
        if let Some(signal) = config.parent_death_signal {
            let parent = nix::unistd::getpid();
            // SAFETY: runs in the child between fork and exec; prctl and getppid are
            // async-signal-safe system calls and touch no memory of the parent.
            unsafe {
                std::os::unix::process::CommandExt::pre_exec(&mut command, move || {
                    nix::sys::prctl::set_pdeathsig(signal)?;
                    // The parent may have died before the signal was armed.
                    if nix::unistd::getppid() != parent {
                        return Err(std::io::Error::other("runc's parent exited as it started"));
                    }
                    Ok(())
                });
            }
        }
        match self.io.take() {
            Some(io) => io.apply(&mut command),
            None => {
                command.stdout(Stdio::piped()).stderr(Stdio::piped());
                command.stdin(Stdio::null());
            }
        }
        if self.stdin.is_some() {
            command.stdin(Stdio::piped());
        }
        let mappings: Vec<FdMapping> = self
            .fds
            .drain(..)
            .enumerate()
            .map(|(i, fd)| FdMapping {
                parent_fd: fd,
                child_fd: 3 + i as i32,
            })
            .collect();
        if !mappings.is_empty() {
            // Child fds 3, 4, ... are distinct by construction, so this cannot collide.
            let _ = command.fd_mappings(mappings);
        }
        command
    }

    /// Checks the exit status and reads back the pid; on failure, finds runc's reason.
    pub fn finish(self, outcome: Outcome) -> Result<Finished, Error> {
        if !outcome.status.success() {
            return Err(Error::Command {
                message: self.reason(&outcome.stderr),
                command: self.display,
                status: outcome.status,
            });
        }
        let pid = match &self.pid_file {
            Some(file) => Some(read_pid(&file.path()).map_err(|e| Error::Io {
                command: self.display.clone(),
                context: "reading the pid file",
                error: e,
            })?),
            None => None,
        };
        Ok(Finished {
            stdout: outcome.stdout,
            pid,
        })
    }

    /// Finishes a foreground run or exec, whose exit status is the container process's.
    /// A failure is runc's own only when runc logged an error; otherwise it is the process's.
    pub fn finish_foreground(self, outcome: Outcome) -> Result<ExitStatus, Error> {
        if !outcome.status.success()
            && let Some(reason) = self.log.as_ref().and_then(last_error)
        {
            return Err(Error::Command {
                command: self.display,
                status: outcome.status,
                message: reason,
            });
        }
        Ok(outcome.status)
    }

    fn reason(&self, stderr: &[u8]) -> String {
        if let Some(reason) = self.log.as_ref().and_then(last_error) {
            return reason;
        }
        let text = String::from_utf8_lossy(stderr);
        text.lines()
            .rev()
            .find_map(text_error)
            .or_else(|| Some(text.trim().to_owned()).filter(|t| !t.is_empty()))
            .unwrap_or_else(|| "runc gave no reason".to_owned())
    }
}

fn read_pid(path: &Path) -> std::io::Result<u32> {
    let text = std::fs::read_to_string(path)?;
    text.trim().parse().map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{} holds {text:?}, not a pid", path.display()),
        )
    })
}

/// The message of the last error runc wrote to its log during this call.
fn last_error(log: &LogCursor) -> Option<String> {
    let mut file = std::fs::File::open(&log.path).ok()?;
    let len = file.metadata().ok()?.len();
    // Only this call's part of the log, and at most its last 64 KiB.
    let start = log.offset.max(len.saturating_sub(64 * 1024));
    file.seek(SeekFrom::Start(start)).ok()?;
    let mut text = String::new();
    file.read_to_string(&mut text).ok()?;
    text.lines().rev().find_map(|line| match log.format {
        LogFormat::Json => json_error(line),
        LogFormat::Text => text_error(line),
    })
}

pub(crate) fn json_error(line: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(line).ok()?;
    (value.get("level")?.as_str()? == "error")
        .then(|| value.get("msg")?.as_str().map(|m| m.trim().to_owned()))
        .flatten()
}

/// The `msg` of a logrus text line at level error.
pub(crate) fn text_error(line: &str) -> Option<String> {
    if !line.contains("level=error") {
        return None;
    }
    let start = line.find("msg=")? + 4;
    let rest = &line[start..];
    if let Some(quoted) = rest.strip_prefix('"') {
        let mut msg = String::new();
        let mut chars = quoted.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some('n') => msg.push('\n'),
                    Some(other) => msg.push(other),
                    None => break,
                },
                '"' => break,
                c => msg.push(c),
            }
        }
        Some(msg.trim().to_owned())
    } else {
        rest.split_whitespace().next().map(str::to_owned)
    }
}

/// Parses captured JSON output.
pub(crate) fn parse_json<T: DeserializeOwned>(command: &str, stdout: &[u8]) -> Result<T, Error> {
    serde_json::from_slice(stdout).map_err(|e| Error::Parse {
        command: command.to_owned(),
        message: e.to_string(),
    })
}

fn bundle_config(bundle: &Path) -> Result<(), Error> {
    if bundle.join("config.json").is_file() {
        Ok(())
    } else {
        Err(Error::MissingConfig {
            bundle: bundle.to_owned(),
        })
    }
}

fn criu_args(plan: &mut Plan, criu: &CriuOptions) {
    plan.arg("--image-path").arg(&criu.image_path);
    plan.opt("--work-path", criu.work_path.as_ref())
        .flag(criu.tcp_established, "--tcp-established")
        .flag(criu.ext_unix_sk, "--ext-unix-sk")
        .flag(criu.shell_job, "--shell-job")
        .flag(criu.file_locks, "--file-locks")
        .opt("--manage-cgroups-mode", criu.manage_cgroups_mode.as_ref())
        .flag(criu.auto_dedup, "--auto-dedup")
        .flag(criu.lazy_pages, "--lazy-pages");
    for ns in &criu.empty_namespaces {
        plan.arg("--empty-ns").arg(ns);
    }
}

fn init_args(plan: &mut Plan, opts: &mut CreateOptions) -> Result<(), Error> {
    plan.opt("--console-socket", opts.console_socket.as_ref())
        .flag(opts.no_pivot, "--no-pivot")
        .flag(opts.no_new_keyring, "--no-new-keyring");
    plan.pid_file(opts.pid_file.take())?;
    plan.preserve(std::mem::take(&mut opts.extra_files));
    Ok(())
}

/// Plans of every command.
pub(crate) mod build {
    use super::*;

    pub fn create(
        config: &Config,
        id: &str,
        bundle: &Path,
        mut opts: CreateOptions,
    ) -> Result<Plan, Error> {
        bundle_config(bundle)?;
        let mut plan = Plan::starting(config, "create", opts.io.take())?;
        plan.arg("--bundle").arg(bundle);
        init_args(&mut plan, &mut opts)?;
        plan.id(id)?;
        Ok(plan)
    }

    pub fn run(
        config: &Config,
        id: &str,
        bundle: &Path,
        mut opts: CreateOptions,
        detach: bool,
    ) -> Result<Plan, Error> {
        bundle_config(bundle)?;
        let mut plan = Plan::starting(config, "run", opts.io.take())?;
        plan.arg("--bundle").arg(bundle).flag(detach, "--detach");
        if detach {
            init_args(&mut plan, &mut opts)?;
        } else {
            plan.opt("--console-socket", opts.console_socket.as_ref())
                .flag(opts.no_pivot, "--no-pivot")
                .flag(opts.no_new_keyring, "--no-new-keyring");
            plan.preserve(std::mem::take(&mut opts.extra_files));
            plan.limited = false;
        }
        plan.id(id)?;
        Ok(plan)
    }

    pub fn exec(
        config: &Config,
        id: &str,
        process: &(impl serde::Serialize + ?Sized),
        mut opts: ExecOptions,
        detach: bool,
    ) -> Result<Plan, Error> {
        let spec = serde_json::to_vec(process).map_err(|e| Error::Parse {
            command: "runc exec".into(),
            message: format!("the process spec does not serialize: {e}"),
        })?;
        let mut plan = Plan::starting(config, "exec", opts.io.take())?;
        plan.preserve(std::mem::take(&mut opts.extra_files));
        let path = plan.memory_file("runc-process", &spec)?;
        plan.arg("--process").arg(path);
        plan.opt("--console-socket", opts.console_socket.as_ref());
        if detach {
            plan.arg("--detach");
            plan.pid_file(opts.pid_file.take())?;
        } else {
            plan.limited = false;
        }
        plan.id(id)?;
        Ok(plan)
    }

    pub fn simple(config: &Config, sub: &str, id: &str) -> Result<Plan, Error> {
        let mut plan = Plan::captured(config, sub)?;
        plan.id(id)?;
        Ok(plan)
    }

    pub fn kill(config: &Config, id: &str, signal: i32, all: bool) -> Result<Plan, Error> {
        let mut plan = Plan::captured(config, "kill")?;
        plan.flag(all, "--all");
        plan.id(id)?;
        plan.arg(signal.to_string());
        Ok(plan)
    }

    pub fn delete(config: &Config, id: &str, force: bool) -> Result<Plan, Error> {
        let mut plan = Plan::captured(config, "delete")?;
        plan.flag(force, "--force");
        plan.id(id)?;
        Ok(plan)
    }

    pub fn list(config: &Config) -> Result<Plan, Error> {
        let mut plan = Plan::captured(config, "list")?;
        plan.arg("--format").arg("json");
        Ok(plan)
    }

    pub fn ps(config: &Config, id: &str) -> Result<Plan, Error> {
        let mut plan = Plan::captured(config, "ps")?;
        plan.arg("--format").arg("json");
        plan.id(id)?;
        Ok(plan)
    }

    pub fn update(
        config: &Config,
        id: &str,
        resources: &(impl serde::Serialize + ?Sized),
    ) -> Result<Plan, Error> {
        let mut plan = Plan::captured(config, "update")?;
        plan.arg("--resources").arg("-");
        plan.stdin = Some(serde_json::to_vec(resources).map_err(|e| Error::Parse {
            command: "runc update".into(),
            message: format!("the resources do not serialize: {e}"),
        })?);
        plan.id(id)?;
        Ok(plan)
    }

    pub fn stats(config: &Config, id: &str) -> Result<Plan, Error> {
        let mut plan = Plan::captured(config, "events")?;
        plan.arg("--stats");
        plan.id(id)?;
        Ok(plan)
    }

    pub fn events(config: &Config, id: &str, interval: std::time::Duration) -> Result<Plan, Error> {
        let mut plan = Plan::captured(config, "events")?;
        plan.arg(format!("--interval={}ms", interval.as_millis().max(1)));
        plan.id(id)?;
        plan.limited = false;
        Ok(plan)
    }

    pub fn checkpoint(config: &Config, id: &str, opts: &CheckpointOptions) -> Result<Plan, Error> {
        let mut plan = Plan::captured(config, "checkpoint")?;
        criu_args(&mut plan, &opts.criu);
        plan.opt("--parent-path", opts.parent_path.as_ref())
            .flag(opts.leave_running, "--leave-running")
            .flag(opts.pre_dump, "--pre-dump");
        plan.id(id)?;
        Ok(plan)
    }

    pub fn restore(
        config: &Config,
        id: &str,
        bundle: &Path,
        mut opts: RestoreOptions,
    ) -> Result<Plan, Error> {
        bundle_config(bundle)?;
        let mut plan = Plan::starting(config, "restore", opts.create.io.take())?;
        criu_args(&mut plan, &opts.criu);
        plan.arg("--bundle").arg(bundle).arg("--detach");
        plan.flag(opts.no_subreaper, "--no-subreaper");
        init_args(&mut plan, &mut opts.create)?;
        plan.id(id)?;
        Ok(plan)
    }

    pub fn features(config: &Config) -> Result<Plan, Error> {
        Plan::captured(config, "features")
    }

    pub fn version(config: &Config) -> Result<Plan, Error> {
        let mut plan = Plan::captured(config, "--version")?;
        plan.display = "runc --version".into();
        Ok(plan)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Runc;

    fn args(plan: &Plan) -> Vec<String> {
        plan.args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn global_flags_come_first() {
        let runc = Runc::builder()
            .root("/r")
            .log("/l.json", LogFormat::Json)
            .criu("/usr/sbin/criu")
            .systemd_cgroup(true)
            .rootless(false)
            .debug(true)
            .build();
        let plan = build::delete(&runc.config, "c1", true).expect("plan");
        assert_eq!(
            args(&plan),
            [
                "--root",
                "/r",
                "--log",
                "/l.json",
                "--log-format",
                "json",
                "--criu",
                "/usr/sbin/criu",
                "--systemd-cgroup",
                "--rootless=false",
                "--debug",
                "delete",
                "--force",
                "c1"
            ]
        );
        assert_eq!(plan.display, "runc delete c1");
    }

    #[test]
    fn runc_never_sees_notify_socket() {
        let runc = Runc::default();
        let mut plan = build::delete(&runc.config, "c1", true).expect("plan");
        let command = plan.command(&runc.config);
        let removed = command
            .get_envs()
            .any(|(name, value)| name == NOTIFY_SOCKET && value.is_none());
        assert!(
            removed,
            "NOTIFY_SOCKET is not removed from runc's environment"
        );
    }

    #[test]
    fn kill_puts_the_signal_after_the_id() {
        let plan = build::kill(&Runc::default().config, "c1", 9, true).expect("plan");
        assert_eq!(args(&plan), ["kill", "--all", "c1", "9"]);
    }

    #[test]
    fn checkpoint_and_restore_pass_criu_options() {
        let criu = CriuOptions {
            image_path: "/img".into(),
            work_path: Some("/work".into()),
            tcp_established: true,
            ext_unix_sk: true,
            shell_job: true,
            file_locks: true,
            manage_cgroups_mode: Some("soft".into()),
            empty_namespaces: vec!["network".into()],
            auto_dedup: false,
            lazy_pages: false,
        };
        let config = Runc::default().config;
        let plan = build::checkpoint(
            &config,
            "c1",
            &CheckpointOptions {
                criu: criu.clone(),
                parent_path: Some("/parent".into()),
                leave_running: true,
                pre_dump: false,
            },
        )
        .expect("plan");
        assert_eq!(
            args(&plan),
            [
                "checkpoint",
                "--image-path",
                "/img",
                "--work-path",
                "/work",
                "--tcp-established",
                "--ext-unix-sk",
                "--shell-job",
                "--file-locks",
                "--manage-cgroups-mode",
                "soft",
                "--empty-ns",
                "network",
                "--parent-path",
                "/parent",
                "--leave-running",
                "c1"
            ]
        );

        let bundle = tempfile::tempdir().expect("tempdir");
        std::fs::write(bundle.path().join("config.json"), "{}").expect("config");
        let plan = build::restore(
            &config,
            "c1",
            bundle.path(),
            RestoreOptions {
                criu,
                create: CreateOptions {
                    pid_file: Some("/p".into()),
                    no_pivot: true,
                    ..Default::default()
                },
                no_subreaper: true,
            },
        )
        .expect("plan");
        let a = args(&plan);
        let at = |flag: &str| a.iter().position(|x| x == flag);
        assert_eq!(a[0], "--log", "a private JSON log when none is configured");
        assert!(at("--image-path").is_some() && at("--no-subreaper").is_some());
        assert!(at("--detach").is_some() && at("--no-pivot").is_some());
        assert_eq!(a[at("--pid-file").expect("pid file") + 1], "/p");
        assert_eq!(a.last().map(String::as_str), Some("c1"));
    }

    #[test]
    fn bad_ids_and_bundles_are_refused_before_running() {
        let config = Runc::default().config;
        assert!(matches!(
            build::delete(&config, "../etc", false),
            Err(Error::InvalidId { .. })
        ));
        assert!(matches!(
            build::kill(&config, "a/b", 9, false),
            Err(Error::InvalidId { .. })
        ));
        let empty = tempfile::tempdir().expect("tempdir");
        assert!(matches!(
            build::create(&config, "c1", empty.path(), CreateOptions::default()),
            Err(Error::MissingConfig { .. })
        ));
    }

    #[test]
    fn runc_errors_are_read_from_both_log_formats() {
        assert_eq!(
            json_error(r#"{"level":"error","msg":"container \"x\" does not exist","time":"t"}"#),
            Some("container \"x\" does not exist".into())
        );
        assert_eq!(json_error(r#"{"level":"info","msg":"hi"}"#), None);
        assert_eq!(
            text_error(r#"time="t" level=error msg="container does not exist\n""#),
            Some("container does not exist".into())
        );
        assert_eq!(text_error("level=error msg=plain"), Some("plain".into()));
    }

    #[test]
    fn version_text_parses() {
        let v = crate::types::Version::parse(
            "runc version 1.1.5+ds1\ncommit: abc\nspec: 1.0.2-dev\ngo: go1.19.8\n",
        );
        assert_eq!(
            (v.runc.as_str(), v.commit.as_str(), v.spec.as_str()),
            ("1.1.5+ds1", "abc", "1.0.2-dev")
        );
    }
}
