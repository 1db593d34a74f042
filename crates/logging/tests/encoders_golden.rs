//! Golden bytes of the json-file and CRI encoders. The json-file expectations are what
//! Docker's json-file driver writes for the same message (its `jsonlog` escaping, Go's
//! RFC3339Nano time in UTC, `\n` ending the `log` of a whole line).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ctrd_logging::sinks::{cri, json_file};
use ctrd_logging::{Record, Stream};

/// 2006-01-02T15:04:05.123456789Z
fn t(nanos: u32) -> SystemTime {
    UNIX_EPOCH + Duration::new(1_136_214_245, nanos)
}

fn json(bytes: &[u8], stream: Stream, partial: bool, nanos: u32) -> String {
    let mut out = Vec::new();
    json_file::Encoder::default().encode(
        &Record {
            stream,
            time: t(nanos),
            bytes,
            partial,
        },
        &mut out,
    );
    String::from_utf8(out).expect("json-file lines are UTF-8")
}

fn cri_line(bytes: &[u8], stream: Stream, partial: bool, nanos: u32) -> Vec<u8> {
    let mut out = Vec::new();
    cri::Encoder::default().encode(
        &Record {
            stream,
            time: t(nanos),
            bytes,
            partial,
        },
        &mut out,
    );
    out
}

#[test]
fn json_file_plain_line() {
    assert_eq!(
        json(b"hello world", Stream::Stdout, false, 123_456_789),
        "{\"log\":\"hello world\\n\",\"stream\":\"stdout\",\"time\":\"2006-01-02T15:04:05.123456789Z\"}\n"
    );
}

#[test]
fn json_file_time_drops_trailing_zeros() {
    assert_eq!(
        json(b"x", Stream::Stderr, false, 500_000_000),
        "{\"log\":\"x\\n\",\"stream\":\"stderr\",\"time\":\"2006-01-02T15:04:05.5Z\"}\n"
    );
    assert_eq!(
        json(b"x", Stream::Stderr, false, 0),
        "{\"log\":\"x\\n\",\"stream\":\"stderr\",\"time\":\"2006-01-02T15:04:05Z\"}\n"
    );
}

#[test]
fn json_file_escapes_as_docker() {
    // Quote, backslash, CR, tab (Docker has no short form for tab), other control bytes,
    // the HTML-sensitive <, > and &, and DEL (left alone).
    assert_eq!(
        json(
            b"a\"b\\c\rd\te\x01f\x1fg<h>i&j\x7f",
            Stream::Stdout,
            false,
            1
        ),
        "{\"log\":\"a\\\"b\\\\c\\rd\\u0009e\\u0001f\\u001fg\\u003ch\\u003ei\\u0026j\x7f\\n\",\
         \"stream\":\"stdout\",\"time\":\"2006-01-02T15:04:05.000000001Z\"}\n"
    );
}

#[test]
fn json_file_keeps_utf8_and_escapes_line_separators() {
    assert_eq!(
        json(
            "é ✓ 😀 \u{2028} \u{2029}".as_bytes(),
            Stream::Stdout,
            false,
            1
        ),
        "{\"log\":\"é ✓ 😀 \\u2028 \\u2029\\n\",\"stream\":\"stdout\",\"time\":\"2006-01-02T15:04:05.000000001Z\"}\n"
    );
}

#[test]
fn json_file_replaces_each_invalid_byte_as_go_does() {
    // A lone continuation byte, a truncated 3-byte sequence (two bytes, two U+FFFD), an
    // overlong encoding, a surrogate, and 0xFF.
    assert_eq!(
        json(
            b"a\x80b\xe2\x82c\xc0\xafd\xed\xa0\x80e\xff",
            Stream::Stdout,
            false,
            1
        ),
        "{\"log\":\"a\\ufffdb\\ufffd\\ufffdc\\ufffd\\ufffdd\\ufffd\\ufffd\\ufffde\\ufffd\\n\",\
         \"stream\":\"stdout\",\"time\":\"2006-01-02T15:04:05.000000001Z\"}\n"
    );
}

#[test]
fn json_file_partial_record_has_no_newline() {
    assert_eq!(
        json(b"piece", Stream::Stdout, true, 1),
        "{\"log\":\"piece\",\"stream\":\"stdout\",\"time\":\"2006-01-02T15:04:05.000000001Z\"}\n"
    );
    // An empty line is a log of just the newline.
    assert_eq!(
        json(b"", Stream::Stdout, false, 1),
        "{\"log\":\"\\n\",\"stream\":\"stdout\",\"time\":\"2006-01-02T15:04:05.000000001Z\"}\n"
    );
}

#[test]
fn cri_lines() {
    assert_eq!(
        cri_line(b"hello", Stream::Stdout, false, 123_456_789),
        b"2006-01-02T15:04:05.123456789Z stdout F hello\n".to_vec()
    );
    assert_eq!(
        cri_line(b"part", Stream::Stderr, true, 100),
        b"2006-01-02T15:04:05.0000001Z stderr P part\n".to_vec()
    );
    // Raw bytes, binary included, pass as they are.
    assert_eq!(
        cri_line(b"\xff\x00\"\t", Stream::Stdout, false, 0),
        b"2006-01-02T15:04:05Z stdout F \xff\x00\"\t\n".to_vec()
    );
}

#[test]
fn json_file_tag_goes_in_attrs_as_docker_writes_it() {
    let mut out = Vec::new();
    json_file::Encoder::with_tag(Some("web<1>\t\"a\"")).encode(
        &Record {
            stream: Stream::Stdout,
            time: t(1),
            bytes: b"x",
            partial: false,
        },
        &mut out,
    );
    assert_eq!(
        String::from_utf8(out).expect("utf-8"),
        "{\"log\":\"x\\n\",\"stream\":\"stdout\",\"attrs\":{\"tag\":\"web\\u003c1\\u003e\\t\\\"a\\\"\"},\
         \"time\":\"2006-01-02T15:04:05.000000001Z\"}\n"
    );
}
