//! `Stats` read from the cgroup files gives what the Go shim gives: the same metrics type,
//! the same messages and lists present, the same limits and counts, and live figures where
//! the Go shim has them. Two identical containers, one under each shim, on each daemon.

mod common;

use std::collections::BTreeMap;

use common::{Bed, Shim};
use ctrd_api::io::containerd::cgroups::{v1, v2};
use ctrd_api::prost::Message;
use ctrd_testbed::Daemon;

const ID: &str = "figures";
const LIMIT: &str = "67108864";

/// Runs the container on `bed` and returns its metrics, flattened.
fn figures(bed: &Bed) -> (String, BTreeMap<String, String>) {
    let rootfs = bed.rootfs();
    bed.ok(&[
        "run",
        "-d",
        &format!("--memory-limit={LIMIT}"),
        "--rootfs",
        &rootfs,
        ID,
        "/bin/sh",
        "-c",
        "dd if=/dev/zero of=/dev/null bs=64k count=2000 2>/dev/null; exec sleep 300",
    ]);
    bed.eventually("the container runs", || bed.task_status(ID) == "RUNNING");
    // Past the dd: the figures stop moving.
    std::thread::sleep(std::time::Duration::from_millis(500));
    let any = bed.metrics(ID);
    bed.remove(ID);
    let text = if any.type_url.ends_with("io.containerd.cgroups.v1.Metrics") {
        format!(
            "{:?}",
            v1::Metrics::decode(&*any.value).expect("v1 metrics")
        )
    } else {
        format!(
            "{:?}",
            v2::Metrics::decode(&*any.value).expect("v2 metrics")
        )
    };
    (any.type_url, flatten(&text))
}

/// The fields of a prost message's `Debug` text, by path (`memory.usage.limit`), with list
/// items numbered (`cpu.usage.per_cpu.0`) and a list's length at its own path;
/// `Some(..)` is transparent, `None` is a value.
fn flatten(debug: &str) -> BTreeMap<String, String> {
    let mut fields = BTreeMap::new();
    let mut parser = Parser {
        text: debug.as_bytes(),
        at: 0,
    };
    parser.value("", &mut fields);
    fields
}

struct Parser<'a> {
    text: &'a [u8],
    at: usize,
}

impl Parser<'_> {
    fn peek(&self) -> u8 {
        self.text.get(self.at).copied().unwrap_or(0)
    }

    fn skip(&mut self, s: &str) {
        assert!(
            self.text[self.at..].starts_with(s.as_bytes()),
            "expected {s:?} at {}",
            String::from_utf8_lossy(&self.text[self.at..])
        );
        self.at += s.len();
    }

    fn word(&mut self) -> String {
        let start = self.at;
        while !matches!(
            self.peek(),
            b',' | b'}' | b')' | b']' | b' ' | b'(' | b':' | 0
        ) {
            self.at += 1;
        }
        String::from_utf8_lossy(&self.text[start..self.at]).into_owned()
    }

    fn value(&mut self, path: &str, out: &mut BTreeMap<String, String>) {
        let join = |name: &str| {
            if path.is_empty() {
                name.to_owned()
            } else {
                format!("{path}.{name}")
            }
        };
        match self.peek() {
            b'[' => {
                self.skip("[");
                let mut n = 0;
                while self.peek() != b']' {
                    self.value(&join(&n.to_string()), out);
                    n += 1;
                    if self.peek() == b',' {
                        self.skip(", ");
                    }
                }
                self.skip("]");
                out.insert(path.to_owned(), format!("{n} items"));
            }
            b'"' => {
                self.skip("\"");
                let start = self.at;
                while self.peek() != b'"' {
                    self.at += if self.peek() == b'\\' { 2 } else { 1 };
                }
                out.insert(
                    path.to_owned(),
                    String::from_utf8_lossy(&self.text[start..self.at]).into_owned(),
                );
                self.skip("\"");
            }
            _ => {
                let word = self.word();
                if word == "Some" {
                    self.skip("(");
                    self.value(path, out);
                    self.skip(")");
                } else if self.text[self.at..].starts_with(b" {") {
                    self.skip(" {");
                    if self.peek() == b' ' {
                        self.skip(" ");
                    }
                    while self.peek() != b'}' {
                        let name = self.word();
                        self.skip(": ");
                        self.value(&join(&name), out);
                        if self.peek() == b',' {
                            self.skip(",");
                        }
                        if self.peek() == b' ' {
                            self.skip(" ");
                        }
                    }
                    self.skip("}");
                } else {
                    out.insert(path.to_owned(), word);
                }
            }
        }
    }
}

#[test]
fn flatten_reads_prost_debug_text() {
    let metrics = v1::Metrics {
        pids: Some(v1::PidsStat {
            current: 1,
            limit: 0,
        }),
        cpu: Some(v1::CpuStat {
            usage: Some(v1::CpuUsage {
                per_cpu: vec![5, 6],
                ..Default::default()
            }),
            throttling: None,
        }),
        blkio: Some(v1::BlkIoStat {
            io_serviced_recursive: vec![v1::BlkIoEntry {
                op: "Read".into(),
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    };
    let fields = flatten(&format!("{metrics:?}"));
    assert_eq!(fields["pids.current"], "1");
    assert_eq!(fields["cpu.usage.per_cpu"], "2 items");
    assert_eq!(fields["cpu.usage.per_cpu.1"], "6");
    assert_eq!(fields["cpu.throttling"], "None");
    assert_eq!(fields["blkio.io_serviced_recursive.0.op"], "Read");
    assert_eq!(fields["memory"], "None");
}

/// Figures that must be equal under both shims for identical idle containers.
fn is_static(path: &str) -> bool {
    path.ends_with(".limit")
        || path.ends_with("_limit")
        || path.starts_with("pids.")
        || path.starts_with("memory_oom_control.")
        || path.starts_with("cpu.throttling.")
        || path.starts_with("hugetlb.")
        || path == "cpu.usage.per_cpu"
}

/// Figures a live container has under any shim.
const LIVE: &[&str] = &[
    "cpu.usage.total",
    "memory.usage.usage",
    "memory.usage.max",
    "memory.swap.usage",
    "memory.kernel.usage",
];

#[test]
fn stats_match_the_go_shim() {
    for daemon in Daemon::selected() {
        let (ours_type, ours) = figures(&Bed::new(daemon, Shim::Ours));
        let (go_type, go) = figures(&Bed::new(daemon, Shim::Go));
        let on = format!("containerd {}", daemon.version());
        assert_eq!(ours_type, go_type, "{on}: the metrics type");
        let ours_paths: Vec<&String> = ours.keys().collect();
        let go_paths: Vec<&String> = go.keys().collect();
        assert_eq!(
            ours_paths, go_paths,
            "{on}: the same fields, messages and list lengths\nours: {ours:#?}\ngo: {go:#?}"
        );
        for (path, value) in &go {
            if is_static(path) {
                assert_eq!(&ours[path], value, "{on}: {path}");
            }
        }
        for path in LIVE.iter().filter(|p| go.contains_key(**p)) {
            assert_ne!(go[*path], "0", "{on}: the Go shim's {path}");
            assert_ne!(ours[*path], "0", "{on}: our {path}\n{ours:#?}");
        }
        assert_eq!(ours["memory.usage.limit"], LIMIT, "{on}");
    }
}
