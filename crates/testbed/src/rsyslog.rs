//! A private rsyslog on loopback, for tests of syslog senders.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::Error;

/// Debian's rsyslog daemon.
const RSYSLOGD: &str = "/usr/sbin/rsyslogd";

/// An rsyslogd with its own config, listening on UDP and TCP ports of 127.0.0.1 and on a unix
/// datagram socket in its temporary folder, writing every message it parses as one line of
/// `PRI|APP-NAME|PROCID|MSGID|HOSTNAME|MSG` to a file. Stopped and removed when dropped.
#[derive(Debug)]
pub struct Rsyslog {
    child: Child,
    dir: tempfile::TempDir,
    udp: u16,
    tcp: u16,
}

/// A port free on 127.0.0.1 right now.
fn free_port() -> Result<u16, Error> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| Error::io("127.0.0.1", e))
}

impl Rsyslog {
    /// Starts it and waits until it listens.
    pub fn start() -> Result<Rsyslog, Error> {
        if !Path::new(RSYSLOGD).is_file() {
            return Err(Error::Missing {
                what: "rsyslogd (Debian package rsyslog)".into(),
                path: RSYSLOGD.into(),
            });
        }
        let dir = tempfile::Builder::new()
            .prefix("ctrd-rsyslog-")
            .tempdir_in("/tmp")
            .map_err(|e| Error::io("/tmp", e))?;
        let (udp, tcp) = (free_port()?, free_port()?);
        let d = dir.path().display();
        let config = format!(
            "global(workDirectory=\"{d}\")\n\
             module(load=\"imudp\")\n\
             module(load=\"imtcp\")\n\
             module(load=\"imuxsock\" SysSock.Use=\"off\")\n\
             input(type=\"imudp\" address=\"127.0.0.1\" port=\"{udp}\")\n\
             input(type=\"imtcp\" address=\"127.0.0.1\" port=\"{tcp}\")\n\
             input(type=\"imuxsock\" Socket=\"{d}/log.sock\" UseSpecialParser=\"off\" \
             ParseHostname=\"on\")\n\
             template(name=\"fields\" type=\"string\" \
             string=\"%pri%|%app-name%|%procid%|%msgid%|%hostname%|%msg%\\n\")\n\
             *.* action(type=\"omfile\" file=\"{d}/messages\" template=\"fields\")\n"
        );
        let config_path = dir.path().join("rsyslog.conf");
        std::fs::write(&config_path, config).map_err(|e| Error::io(&config_path, e))?;
        let log = dir.path().join("rsyslogd.log");
        let log_file = std::fs::File::create(&log).map_err(|e| Error::io(&log, e))?;
        let child = Command::new(RSYSLOGD)
            .arg("-n")
            .arg("-f")
            .arg(&config_path)
            .arg("-i")
            .arg(dir.path().join("rsyslogd.pid"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .map_err(|e| Error::io(RSYSLOGD, e))?;
        let mut rsyslog = Rsyslog {
            child,
            dir,
            udp,
            tcp,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        while TcpStream::connect(("127.0.0.1", tcp)).is_err() || !rsyslog.unix_socket().exists() {
            if let Ok(Some(status)) = rsyslog.child.try_wait() {
                return Err(Error::DaemonStart {
                    daemon: "rsyslogd".into(),
                    reason: format!("it exited with {status}"),
                    log: std::fs::read_to_string(&log).unwrap_or_default(),
                });
            }
            if Instant::now() > deadline {
                return Err(Error::DaemonStart {
                    daemon: "rsyslogd".into(),
                    reason: "it did not listen within 15 s".into(),
                    log: std::fs::read_to_string(&log).unwrap_or_default(),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(rsyslog)
    }

    /// Its UDP port on 127.0.0.1.
    pub fn udp_port(&self) -> u16 {
        self.udp
    }

    /// Its TCP port on 127.0.0.1.
    pub fn tcp_port(&self) -> u16 {
        self.tcp
    }

    /// Its unix datagram socket.
    pub fn unix_socket(&self) -> PathBuf {
        self.dir.path().join("log.sock")
    }

    /// The lines written so far.
    pub fn lines(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("messages"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Waits until at least `count` lines arrived (up to `limit`), and returns the lines.
    pub fn wait_for_lines(&self, count: usize, limit: Duration) -> Vec<String> {
        let deadline = Instant::now() + limit;
        loop {
            let lines = self.lines();
            if lines.len() >= count || Instant::now() > deadline {
                return lines;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
