//! The `syslog` sink: RFC 5424 messages over UDP, TCP (octet-counting framing, RFC 6587) or a
//! unix socket (datagram, as `/dev/log`; stream when the socket is one).
//!
//! `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID - MSG`: the priority is the facility
//! with severity `info` for stdout and `err` for stderr (as Docker), the time is UTC (to the
//! second with `syslog-format=rfc5424`, to the microsecond with `rfc5424micro`), APP-NAME the
//! `tag` (default the container id's first 12 characters), PROCID the driver's pid, MSGID the
//! stream's name, and MSG the record's bytes.

use std::io::Write;
use std::net::{TcpStream, ToSocketAddrs, UdpSocket};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::options::Options;
use crate::record::Stream;
use crate::sinks::Labels;
use crate::time::TimeFormat;
use crate::{Driver, Error, Record};

/// Where the sink sends, by default: the local syslog socket.
pub const DEFAULT_ADDRESS: &str = "unix:///dev/log";

/// The timestamp's precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// Whole seconds (`syslog-format=rfc5424`).
    Seconds,
    /// Microseconds (`syslog-format=rfc5424micro`).
    Micros,
}

/// The syslog sink's options (Docker's names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyslogOptions {
    /// `syslog-address`: `udp://HOST:PORT`, `tcp://HOST:PORT`, `unix:///PATH` or
    /// `unixgram:///PATH`; default [`DEFAULT_ADDRESS`].
    pub address: String,
    /// `syslog-facility`, by name (`daemon` by default, as Docker).
    pub facility: u8,
    /// `tag`: APP-NAME.
    pub tag: Option<String>,
    /// `syslog-format`.
    pub precision: Precision,
}

const FACILITIES: &[(&str, u8)] = &[
    ("kern", 0),
    ("user", 1),
    ("mail", 2),
    ("daemon", 3),
    ("auth", 4),
    ("syslog", 5),
    ("lpr", 6),
    ("news", 7),
    ("uucp", 8),
    ("cron", 9),
    ("authpriv", 10),
    ("ftp", 11),
    ("local0", 16),
    ("local1", 17),
    ("local2", 18),
    ("local3", 19),
    ("local4", 20),
    ("local5", 21),
    ("local6", 22),
    ("local7", 23),
];

impl SyslogOptions {
    /// Reads `syslog-address`, `syslog-facility`, `syslog-format` and `tag`.
    pub fn from_options(options: &mut Options) -> Result<SyslogOptions, Error> {
        Ok(SyslogOptions {
            address: options
                .string("syslog-address")
                .unwrap_or_else(|| DEFAULT_ADDRESS.to_owned()),
            facility: options.choice("syslog-facility", FACILITIES)?.unwrap_or(3),
            tag: options.string("tag"),
            precision: options
                .choice(
                    "syslog-format",
                    &[
                        ("rfc5424", Precision::Seconds),
                        ("rfc5424micro", Precision::Micros),
                    ],
                )?
                .unwrap_or(Precision::Seconds),
        })
    }
}

#[derive(Debug)]
enum Transport {
    Udp(UdpSocket),
    Tcp(TcpStream),
    UnixDatagram(UnixDatagram),
    UnixStream(UnixStream),
}

/// A syslog sink.
#[derive(Debug)]
pub struct Syslog {
    address: String,
    transport: Transport,
    /// ` HOSTNAME APP-NAME PROCID `, the part after the timestamp that never changes.
    middle: Vec<u8>,
    facility: u8,
    precision: Precision,
    time: TimeFormat,
    message: Vec<u8>,
}

impl Syslog {
    /// Connects to the address.
    pub fn open(options: SyslogOptions, labels: &Labels) -> Result<Syslog, Error> {
        let transport = connect(&options.address)?;
        let hostname = nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "-".to_owned());
        let tag = options
            .tag
            .unwrap_or_else(|| labels.id.chars().take(12).collect());
        // RFC 5424 fields are printable US-ASCII without spaces; APP-NAME at most 48 of them.
        let field = |s: &str, max: usize| -> String {
            let clean: String = s
                .chars()
                .filter(|c| c.is_ascii_graphic())
                .take(max)
                .collect();
            if clean.is_empty() { "-".into() } else { clean }
        };
        let middle = format!(
            " {} {} {} ",
            field(&hostname, 255),
            field(&tag, 48),
            std::process::id()
        );
        Ok(Syslog {
            address: options.address,
            transport,
            middle: middle.into_bytes(),
            facility: options.facility,
            precision: options.precision,
            time: TimeFormat::new(),
            message: Vec::with_capacity(1024),
        })
    }

    fn send(&mut self) -> std::io::Result<()> {
        match &mut self.transport {
            Transport::Udp(s) => s.send(&self.message).map(drop),
            Transport::UnixDatagram(s) => s.send(&self.message).map(drop),
            Transport::Tcp(s) => {
                let mut framed = format!("{} ", self.message.len()).into_bytes();
                framed.extend_from_slice(&self.message);
                s.write_all(&framed)
            }
            Transport::UnixStream(s) => {
                let mut framed = format!("{} ", self.message.len()).into_bytes();
                framed.extend_from_slice(&self.message);
                s.write_all(&framed)
            }
        }
    }
}

fn connect(address: &str) -> Result<Transport, Error> {
    let failed = |source| Error::Socket {
        action: "connecting to syslog at",
        address: address.to_owned(),
        error: source,
    };
    if let Some(host) = address.strip_prefix("udp://") {
        let target = host
            .to_socket_addrs()
            .map_err(failed)?
            .next()
            .ok_or_else(|| failed(std::io::Error::other("the host has no address")))?;
        let bind = if target.is_ipv6() {
            "[::]:0"
        } else {
            "0.0.0.0:0"
        };
        let socket = UdpSocket::bind(bind).map_err(failed)?;
        socket.connect(target).map_err(failed)?;
        Ok(Transport::Udp(socket))
    } else if let Some(host) = address.strip_prefix("tcp://") {
        Ok(Transport::Tcp(TcpStream::connect(host).map_err(failed)?))
    } else if let Some(path) = address.strip_prefix("unixgram://") {
        let socket = UnixDatagram::unbound().map_err(failed)?;
        socket.connect(path).map_err(failed)?;
        Ok(Transport::UnixDatagram(socket))
    } else if let Some(path) = address.strip_prefix("unix://") {
        let socket = UnixDatagram::unbound().map_err(failed)?;
        match socket.connect(path) {
            Ok(()) => Ok(Transport::UnixDatagram(socket)),
            // A stream socket refuses a datagram connection with EPROTOTYPE.
            Err(e) if e.raw_os_error() == Some(nix::errno::Errno::EPROTOTYPE as i32) => Ok(
                Transport::UnixStream(UnixStream::connect(path).map_err(failed)?),
            ),
            Err(e) => Err(failed(e)),
        }
    } else {
        Err(Error::BadOption {
            key: "syslog-address".into(),
            value: address.into(),
            expected: "udp://HOST:PORT, tcp://HOST:PORT, unix:///PATH or unixgram:///PATH".into(),
        })
    }
}

impl Driver for Syslog {
    fn write(&mut self, record: &Record<'_>) -> Result<(), Error> {
        let severity = match record.stream {
            Stream::Stdout => 6,
            Stream::Stderr => 3,
        };
        self.message.clear();
        self.message
            .extend_from_slice(format!("<{}>1 ", self.facility * 8 + severity).as_bytes());
        let time = match self.precision {
            Precision::Seconds => {
                let secs = record
                    .time
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_secs();
                UNIX_EPOCH + std::time::Duration::from_secs(secs)
            }
            Precision::Micros => truncate_micros(record.time),
        };
        self.time.append(time, &mut self.message);
        self.message.extend_from_slice(&self.middle);
        self.message
            .extend_from_slice(record.stream.as_str().as_bytes());
        self.message.extend_from_slice(b" - ");
        self.message.extend_from_slice(record.bytes);
        if let Err(first) = self.send() {
            // A stream peer may have gone away (syslog restarted): reconnect once.
            self.transport = connect(&self.address)?;
            self.send().map_err(|_| Error::Socket {
                action: "sending to syslog at",
                address: self.address.clone(),
                error: first,
            })?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), Error> {
        match &mut self.transport {
            Transport::Tcp(s) => s.flush(),
            Transport::UnixStream(s) => s.flush(),
            _ => Ok(()),
        }
        .map_err(|source| Error::Socket {
            action: "sending to syslog at",
            address: self.address.clone(),
            error: source,
        })
    }
}

fn truncate_micros(time: SystemTime) -> SystemTime {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    UNIX_EPOCH + std::time::Duration::new(since.as_secs(), since.subsec_micros() * 1000)
}
