//! The journald sink speaks the native journal protocol to a datagram socket the test serves
//! (systemd-journald itself cannot run on this machine: no systemd as PID 1): fields as Docker
//! sets them, binary-safe values, and entries too large for a datagram in a sealed memfd.

mod common;

use std::collections::HashMap;
use std::io::{IoSliceMut, Read, Seek, SeekFrom, Write};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixDatagram;
use std::time::{Duration, SystemTime};

use common::process::start;
use ctrd_logging::sinks::Labels;
use ctrd_logging::sinks::journald::{Journald, JournaldOptions};
use ctrd_logging::{Driver, Record, Stream};
use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};

type Fields = HashMap<String, Vec<u8>>;

/// Parses one entry of the native protocol.
fn parse(mut data: &[u8]) -> Fields {
    let mut fields = HashMap::new();
    while !data.is_empty() {
        let end = data
            .iter()
            .position(|&b| b == b'=' || b == b'\n')
            .expect("key end");
        let key = String::from_utf8(data[..end].to_vec()).expect("key");
        if data[end] == b'=' {
            let rest = &data[end + 1..];
            let nl = rest.iter().position(|&b| b == b'\n').expect("value end");
            fields.insert(key, rest[..nl].to_vec());
            data = &rest[nl + 1..];
        } else {
            let rest = &data[end + 1..];
            let len = u64::from_le_bytes(rest[..8].try_into().expect("length")) as usize;
            fields.insert(key, rest[8..8 + len].to_vec());
            assert_eq!(rest[8 + len], b'\n');
            data = &rest[9 + len..];
        }
    }
    fields
}

/// Receives one entry: a datagram, or a memfd passed with an empty one.
fn receive(server: &UnixDatagram) -> (Fields, bool) {
    use std::os::fd::AsRawFd;
    let mut buf = vec![0u8; 1 << 20];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let (n, fd) = {
        let mut iov = [IoSliceMut::new(&mut buf)];
        let msg = recvmsg::<()>(
            server.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::empty(),
        )
        .expect("recvmsg");
        let mut fd = None;
        for cmsg in msg.cmsgs().expect("cmsgs") {
            if let ControlMessageOwned::ScmRights(fds) = cmsg {
                fd = fds.first().copied();
            }
        }
        (msg.bytes, fd)
    };
    match fd {
        None => (parse(&buf[..n]), false),
        Some(fd) => {
            assert_eq!(n, 0, "a memfd comes with an empty datagram");
            // SAFETY: the descriptor was just received and nothing else owns it.
            let mut file = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
            // journald maps the whole file; read it from the start likewise.
            file.seek(SeekFrom::Start(0)).expect("seek memfd");
            let mut data = Vec::new();
            file.read_to_end(&mut data).expect("read memfd");
            (parse(&data), true)
        }
    }
}

fn server() -> (tempfile::TempDir, UnixDatagram, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("journal.sock");
    let server = UnixDatagram::bind(&path).expect("bind");
    server
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    (dir, server, path.display().to_string())
}

#[test]
fn records_arrive_with_dockers_fields() {
    let (_dir, server, path) = server();
    let mut d = start(&["sink", "journald", "journald-socket", &path, "name", "web"]);
    assert_eq!(d.readiness(), vec![1]);
    d.stdout
        .as_mut()
        .expect("stdout")
        .write_all(b"hello\n")
        .expect("write");
    let first = receive(&server).0;
    d.stderr
        .as_mut()
        .expect("stderr")
        .write_all(b"oops \xff\n")
        .expect("write");
    let second = receive(&server).0;
    d.stdout
        .as_mut()
        .expect("stdout")
        .write_all(b"no newline")
        .expect("write");
    let (status, err) = d.wait();
    assert!(status.success(), "{err}");
    let third = receive(&server).0;

    assert_eq!(first["MESSAGE"], b"hello");
    assert_eq!(first["PRIORITY"], b"6");
    assert_eq!(first["CONTAINER_ID"], b"c1");
    assert_eq!(first["CONTAINER_ID_FULL"], b"c1");
    assert_eq!(first["CONTAINER_NAME"], b"web");
    assert_eq!(first["SYSLOG_IDENTIFIER"], b"c1");
    assert_eq!(first["CONTAINERD_NAMESPACE"], b"test");
    assert!(!first.contains_key("CONTAINER_PARTIAL_MESSAGE"));
    assert_eq!(second["MESSAGE"], b"oops \xff");
    assert_eq!(second["PRIORITY"], b"3");
    assert_eq!(third["MESSAGE"], b"no newline");
    assert_eq!(third["CONTAINER_PARTIAL_MESSAGE"], b"true");
}

#[test]
fn large_entries_travel_in_a_memfd() {
    let (_dir, server, path) = server();
    let labels = Labels {
        id: "0123456789abcdef".into(),
        namespace: "default".into(),
    };
    let mut sink = Journald::open(
        JournaldOptions {
            socket: path.into(),
            name: None,
            tag: Some("big".into()),
        },
        &labels,
    )
    .expect("open");
    // Larger than any datagram the socket takes, with newlines (the binary-safe form).
    let big: Vec<u8> = (0..3_000_000u32)
        .map(|i| if i % 1000 == 999 { b'\n' } else { b'q' })
        .collect();
    let receiver = std::thread::spawn(move || receive(&server));
    sink.write(&Record {
        stream: Stream::Stdout,
        time: SystemTime::now(),
        bytes: &big,
        partial: false,
    })
    .expect("write");
    let (fields, memfd) = receiver.join().expect("receiver");
    assert!(memfd, "sent as a memfd");
    assert!(fields["MESSAGE"] == big);
    assert_eq!(fields["CONTAINER_ID"], b"0123456789ab");
    assert_eq!(fields["SYSLOG_IDENTIFIER"], b"big");
}

#[test]
fn a_missing_socket_fails_before_ready() {
    let mut d = start(&[
        "sink",
        "journald",
        "journald-socket",
        "/nonexistent/journal.sock",
    ]);
    assert_eq!(d.readiness(), Vec::<u8>::new());
    let (status, err) = d.wait();
    assert_eq!(status.code(), Some(1));
    assert!(
        err.contains("connecting to journald at /nonexistent/journal.sock"),
        "{err}"
    );
}
