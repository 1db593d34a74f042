//! Docker's `json-file` format: one JSON object a line, `{"log":...,"stream":...,"time":...}`.
//!
//! The bytes are Docker's for the same record: the `log` value is escaped as Docker's
//! `jsonlog` package escapes it (`"` and `\` with a backslash, `\n` and `\r` as such, other
//! control bytes and `<`, `>`, `&` as `\u00XX`, U+2028 and U+2029 as `\u2028`/`\u2029`, and
//! every byte that is not part of valid UTF-8 as `\ufffd`), the time is Go's RFC3339Nano in
//! UTC, and a whole line's `log` ends with `\n` while a piece of a long line does not.
//!
//! One deliberate difference: output that ends without a newline. Docker adds a newline to
//! that last fragment, so `docker logs` cannot tell; here the fragment is written as a partial
//! record (no `\n` in `log`), so the reader gives back exactly what the container wrote.
//! Non-UTF-8 bytes cannot survive the format (Docker replaces them too): use the `cri` sink
//! for binary output.

use crate::rotate::RotatingFile;
use crate::sinks::FileOptions;
use crate::time::TimeFormat;
use crate::{Driver, Error, Record};

/// A json-file sink.
#[derive(Debug)]
pub struct JsonFile {
    file: RotatingFile,
    encoder: Encoder,
    line: Vec<u8>,
}

impl JsonFile {
    /// Opens the file, creating it.
    pub fn open(options: FileOptions) -> Result<JsonFile, Error> {
        JsonFile::with_tag(options, None)
    }

    /// Opens the file, adding Docker's `"attrs":{"tag":TAG}` to every line when `tag` is set
    /// (option `tag`).
    pub fn with_tag(options: FileOptions, tag: Option<&str>) -> Result<JsonFile, Error> {
        Ok(JsonFile {
            file: RotatingFile::open(options.path, options.rotation)?,
            encoder: Encoder::with_tag(tag),
            line: Vec::with_capacity(512),
        })
    }
}

impl Driver for JsonFile {
    fn write(&mut self, record: &Record<'_>) -> Result<(), Error> {
        self.line.clear();
        self.encoder.encode(record, &mut self.line);
        self.file.write_entry(&self.line)
    }

    fn flush(&mut self) -> Result<(), Error> {
        self.file.flush()
    }
}

/// Encodes records as json-file lines.
#[derive(Debug, Default)]
pub struct Encoder {
    time: TimeFormat,
    /// `,"attrs":{...}` when a tag is set.
    attrs: Vec<u8>,
}

impl Encoder {
    /// An encoder adding `"attrs":{"tag":TAG}` (as Docker's `tag` option) when `tag` is set.
    pub fn with_tag(tag: Option<&str>) -> Encoder {
        let mut attrs = Vec::new();
        if let Some(tag) = tag {
            attrs.extend_from_slice(b",\"attrs\":{\"tag\":\"");
            go_json_string(tag, &mut attrs);
            attrs.extend_from_slice(b"\"}");
        }
        Encoder {
            time: TimeFormat::new(),
            attrs,
        }
    }

    /// Appends `record`'s line, with its final newline, to `out`.
    pub fn encode(&mut self, record: &Record<'_>, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"log\":\"");
        escape(record.bytes, out);
        if !record.partial {
            out.extend_from_slice(b"\\n");
        }
        out.extend_from_slice(b"\",\"stream\":\"");
        out.extend_from_slice(record.stream.as_str().as_bytes());
        out.push(b'"');
        out.extend_from_slice(&self.attrs);
        out.extend_from_slice(b",\"time\":\"");
        self.time.append(record.time, out);
        out.extend_from_slice(b"\"}\n");
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// A string as Go's `encoding/json` writes it (how Docker encodes `attrs`): like [`escape`],
/// but `\t` has its short form.
fn go_json_string(s: &str, out: &mut Vec<u8>) {
    for part in s.split('\t').enumerate() {
        if part.0 > 0 {
            out.extend_from_slice(b"\\t");
        }
        escape(part.1.as_bytes(), out);
    }
}

/// Whether an ASCII byte is written as it is.
const fn plain(b: u8) -> bool {
    b >= 0x20 && b != b'\\' && b != b'"' && b != b'<' && b != b'>' && b != b'&' && b < 0x80
}

/// Appends `bytes` as the inside of a JSON string, escaped as Docker escapes log lines.
pub fn escape(bytes: &[u8], out: &mut Vec<u8>) {
    // Fast path: runs of plain ASCII, eight bytes at a time.
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        if i + 8 <= bytes.len() {
            let mut word = [0u8; 8];
            word.copy_from_slice(&bytes[i..i + 8]);
            if all_plain(u64::from_le_bytes(word)) {
                i += 8;
                continue;
            }
        }
        let b = bytes[i];
        if plain(b) {
            i += 1;
            continue;
        }
        if b >= 0x80 {
            // Not ASCII: the rest goes through the UTF-8 path.
            out.extend_from_slice(&bytes[start..i]);
            escape_utf8(&bytes[i..], out);
            return;
        }
        out.extend_from_slice(&bytes[start..i]);
        escape_ascii(b, out);
        i += 1;
        start = i;
    }
    out.extend_from_slice(&bytes[start..]);
}

/// Whether none of the eight bytes of `w` needs escaping: all are ASCII, none is below 0x20,
/// and none is `"`, `\`, `<`, `>` or `&`.
fn all_plain(w: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    // A byte of zero in `x` sets its high bit here (exact when no byte of `x` has its high bit
    // set, which is checked first).
    const fn zero_byte(x: u64) -> u64 {
        x.wrapping_sub(ONES) & !x & HIGHS
    }
    if w & HIGHS != 0 {
        return false;
    }
    let below_space = w.wrapping_sub(ONES * 0x20) & !w & HIGHS;
    let special = zero_byte(w ^ (ONES * b'"' as u64))
        | zero_byte(w ^ (ONES * b'\\' as u64))
        | zero_byte(w ^ (ONES * b'<' as u64))
        | zero_byte(w ^ (ONES * b'>' as u64))
        | zero_byte(w ^ (ONES * b'&' as u64));
    below_space | special == 0
}

fn escape_ascii(b: u8, out: &mut Vec<u8>) {
    match b {
        b'\\' | b'"' => out.extend_from_slice(&[b'\\', b]),
        b'\n' => out.extend_from_slice(b"\\n"),
        b'\r' => out.extend_from_slice(b"\\r"),
        _ => out.extend_from_slice(&[
            b'\\',
            b'u',
            b'0',
            b'0',
            HEX[usize::from(b >> 4)],
            HEX[usize::from(b & 0xf)],
        ]),
    }
}

/// The general path, for bytes that are not all ASCII.
fn escape_utf8(bytes: &[u8], out: &mut Vec<u8>) {
    for chunk in bytes.utf8_chunks() {
        let valid = chunk.valid().as_bytes();
        let mut start = 0;
        let mut i = 0;
        while i < valid.len() {
            let b = valid[i];
            if plain(b) {
                i += 1;
                continue;
            }
            if b < 0x80 {
                out.extend_from_slice(&valid[start..i]);
                escape_ascii(b, out);
                i += 1;
                start = i;
                continue;
            }
            // A multi-byte character: U+2028 and U+2029 (E2 80 A8/A9) are escaped.
            if b == 0xe2
                && valid.get(i + 1) == Some(&0x80)
                && matches!(valid.get(i + 2), Some(0xa8 | 0xa9))
            {
                out.extend_from_slice(&valid[start..i]);
                out.extend_from_slice(if valid[i + 2] == 0xa8 {
                    b"\\u2028"
                } else {
                    b"\\u2029"
                });
                i += 3;
                start = i;
                continue;
            }
            i += 1;
        }
        out.extend_from_slice(&valid[start..]);
        // Go decodes an invalid sequence one byte at a time, each one a U+FFFD.
        for _ in chunk.invalid() {
            out.extend_from_slice(b"\\ufffd");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{escape, escape_utf8};
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        /// The eight-bytes-at-a-time path escapes exactly as the general one.
        #[test]
        fn fast_path_matches_the_general_path(bytes in prop::collection::vec(
            prop_oneof![
                8 => 0x20u8..0x7f,
                1 => prop::sample::select(b"\"\\<>&\n\r\t\x00\x1f\x7f".to_vec()),
                1 => any::<u8>(),
            ],
            0..64,
        )) {
            let (mut fast, mut general) = (Vec::new(), Vec::new());
            escape(&bytes, &mut fast);
            escape_utf8(&bytes, &mut general);
            prop_assert_eq!(fast, general);
        }
    }
}
