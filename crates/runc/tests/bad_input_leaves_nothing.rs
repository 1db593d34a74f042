//! Bad input gets a typed error before or from runc, and leaves no fd, process or file behind.

mod common;

use common::{TestRunc, open_fds};
use ctrd_runc::spec::ProcessBuilder;
use ctrd_runc::{CreateOptions, Error, ExecOptions, PipeSpec, ProcessIo, Runc};
use ctrd_testbed::Bundle;

#[test]
fn typed_errors_and_no_leaks() {
    let t = TestRunc::new();
    let before = open_fds();

    let missing = Runc::builder().binary("/nonexistent/runc").build();
    assert!(matches!(missing.list(), Err(Error::BinaryNotFound { .. })));

    let err = t.runc.state("no-such-container").expect_err("unknown id");
    assert!(err.is_not_found(), "{err}");
    assert!(matches!(err, Error::Command { .. }));
    assert!(
        err.to_string().contains("runc state no-such-container"),
        "{err}"
    );

    let err = t
        .runc
        .kill("no-such-container", 9, false)
        .expect_err("unknown id");
    assert!(err.is_not_found(), "{err}");

    let empty = tempfile::tempdir().expect("tempdir");
    let (io, _pipes) = ProcessIo::pipes(PipeSpec {
        stdout: true,
        ..Default::default()
    })
    .expect("pipes");
    assert!(matches!(
        t.runc.create(
            "c1",
            empty.path(),
            CreateOptions {
                io: Some(io),
                ..Default::default()
            }
        ),
        Err(Error::MissingConfig { .. })
    ));
    drop(_pipes);

    for bad in ["../escape", "a/b", "..", ""] {
        assert!(
            matches!(t.runc.delete(bad, true), Err(Error::InvalidId { .. })),
            "{bad:?}"
        );
    }

    // runc itself refuses: its reason comes back from the private JSON log.
    let process = ProcessBuilder::default()
        .args(vec!["true".to_string()])
        .cwd("/")
        .build()
        .expect("process");
    let err = t
        .runc
        .exec_detached("not-there", &process, ExecOptions::default())
        .expect_err("exec into nothing");
    assert!(err.is_not_found(), "{err}");

    // A bundle whose process cannot start: runc's own message, no container left.
    let bundle = Bundle::busybox(&["/no/such/binary"]).expect("bundle");
    let err = t
        .runc
        .run_detached("broken", bundle.path(), CreateOptions::default())
        .expect_err("missing binary in the container");
    assert!(err.to_string().contains("no such file"), "{err}");
    let _ = t.runc.delete("broken", true);
    assert!(t.runc.list().expect("list").is_empty());

    assert_eq!(
        open_fds(),
        before,
        "every fd opened for the failed calls is closed"
    );
    let runc_processes = std::fs::read_dir("/proc")
        .expect("proc")
        .filter_map(|e| e.ok())
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .filter(|c| String::from_utf8_lossy(c).contains("ctrd-runc-root-"))
        .count();
    assert_eq!(runc_processes, 0, "no runc left running");
}
