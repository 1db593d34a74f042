//! The syslog sink against a real rsyslogd (started by the test on loopback with a private
//! config): RFC 5424 messages over UDP, TCP and a unix socket, parsed by rsyslog into the
//! fields we sent.

mod common;

use std::io::Write;
use std::time::Duration;

use common::process::start;
use ctrd_testbed::Rsyslog;

fn through(address: &str, rsyslog: &Rsyslog, marker: &str) {
    let before = rsyslog.lines().len();
    let mut d = start(&[
        "sink",
        "syslog",
        "syslog-address",
        address,
        "tag",
        "web",
        "syslog-facility",
        "local3",
    ]);
    assert_eq!(d.readiness(), vec![1], "{address}");
    let pid = d.child.id();
    d.stdout
        .as_mut()
        .expect("stdout")
        .write_all(format!("{marker} out one\n{marker} out two\n").as_bytes())
        .expect("write");
    d.stderr
        .as_mut()
        .expect("stderr")
        .write_all(format!("{marker} err [x] \"q\"\n").as_bytes())
        .expect("write");
    let (status, err) = d.wait();
    assert!(status.success(), "{address}: {err}");
    let lines = rsyslog.wait_for_lines(before + 3, Duration::from_secs(10));
    let mine: Vec<&String> = lines[before..]
        .iter()
        .filter(|l| l.contains(marker))
        .collect();
    let mut out: Vec<String> = mine.iter().map(|l| l.to_string()).collect();
    out.sort();
    let host = nix::unistd::gethostname()
        .expect("hostname")
        .into_string()
        .expect("utf-8");
    // local3 = 19: info is 19*8+6 = 158, err is 155.
    let mut expected = vec![
        format!("158|web|{pid}|stdout|{host}|{marker} out one"),
        format!("158|web|{pid}|stdout|{host}|{marker} out two"),
        format!("155|web|{pid}|stderr|{host}|{marker} err [x] \"q\""),
    ];
    expected.sort();
    assert_eq!(out, expected, "{address}");
}

#[test]
fn rfc5424_over_udp_tcp_and_unix_reaches_rsyslog() {
    let rsyslog = Rsyslog::start().unwrap_or_else(|e| panic!("{e}"));
    through(
        &format!("udp://127.0.0.1:{}", rsyslog.udp_port()),
        &rsyslog,
        "UDP",
    );
    through(
        &format!("tcp://127.0.0.1:{}", rsyslog.tcp_port()),
        &rsyslog,
        "TCP",
    );
    through(
        &format!("unix://{}", rsyslog.unix_socket().display()),
        &rsyslog,
        "UNIX",
    );
}

#[test]
fn a_bad_address_fails_before_ready() {
    for (address, message) in [
        (
            "smoke://here",
            "option syslog-address=\"smoke://here\" is invalid",
        ),
        (
            "unix:///nonexistent/log.sock",
            "connecting to syslog at unix:///nonexistent/log.sock",
        ),
    ] {
        let mut d = start(&["sink", "syslog", "syslog-address", address]);
        assert_eq!(d.readiness(), Vec::<u8>::new());
        let (status, err) = d.wait();
        assert_eq!(status.code(), Some(1));
        assert!(err.contains(message), "{err}");
    }
}
