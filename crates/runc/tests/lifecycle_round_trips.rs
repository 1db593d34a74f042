//! Real runc on a busybox bundle: the whole container life cycle, with separate stdout and
//! stderr pipes, exit codes, exec, pause and resume, and a terminal through a console socket.

mod common;

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::time::Duration;

use common::{TestRunc, exit_code, wait_for};
use ctrd_runc::spec::ProcessBuilder;
use ctrd_runc::{ConsoleSocket, CreateOptions, ExecOptions, PipeSpec, ProcessIo, Status};
use ctrd_testbed::Bundle;

fn read(pipe: Option<impl Read>) -> String {
    let mut out = String::new();
    pipe.expect("pipe").read_to_string(&mut out).expect("read");
    out
}

#[test]
fn create_start_exec_pause_kill_delete() {
    let t = TestRunc::new();
    let runc = &t.runc;
    let bundle = Bundle::busybox(&[
        "sh",
        "-c",
        "echo to-stdout; echo to-stderr >&2; read line; echo got:$line; exit 5",
    ])
    .expect("bundle");
    let (io, mut pipes) = ProcessIo::pipes(PipeSpec {
        stdin: true,
        stdout: true,
        stderr: true,
        owner: None,
    })
    .expect("pipes");
    let id = "lifecycle";
    let pid = runc
        .create(
            id,
            bundle.path(),
            CreateOptions {
                io: Some(io),
                ..Default::default()
            },
        )
        .expect("create");
    assert!(pid > 0);
    let state = runc.state(id).expect("state");
    assert_eq!((state.status, state.pid as u32), (Status::Created, pid));
    assert_eq!(state.bundle, bundle.path().to_string_lossy());

    runc.start(id).expect("start");
    wait_for(runc, id, Status::Running);
    assert!(runc.ps(id).expect("ps").contains(&(pid as i32)));
    assert!(runc.list().expect("list").iter().any(|c| c.id == id));

    runc.pause(id).expect("pause");
    wait_for(runc, id, Status::Paused);
    runc.resume(id).expect("resume");
    wait_for(runc, id, Status::Running);

    // An exec with its own pipes and exit code, while init waits on stdin.
    let (exec_io, exec_pipes) = ProcessIo::pipes(PipeSpec {
        stdout: true,
        stderr: true,
        ..Default::default()
    })
    .expect("pipes");
    let process = ProcessBuilder::default()
        .args(vec![
            "sh".to_string(),
            "-c".into(),
            "echo exec-out; echo exec-err >&2; exit 3".into(),
        ])
        .cwd("/")
        .build()
        .expect("process");
    let exec_pid = runc
        .exec_detached(
            id,
            &process,
            ExecOptions {
                io: Some(exec_io),
                ..Default::default()
            },
        )
        .expect("exec");
    assert_eq!(exit_code(exec_pid), 3);
    assert_eq!(read(exec_pipes.stdout), "exec-out\n");
    assert_eq!(read(exec_pipes.stderr), "exec-err\n");

    // Finish init through its stdin; its streams stay apart.
    let mut stdin = pipes.stdin.take().expect("stdin");
    stdin.write_all(b"hello\n").expect("write stdin");
    drop(stdin);
    assert_eq!(exit_code(pid), 5);
    assert_eq!(read(pipes.stdout.take()), "to-stdout\ngot:hello\n");
    assert_eq!(read(pipes.stderr.take()), "to-stderr\n");
    wait_for(runc, id, Status::Stopped);

    runc.delete(id, false).expect("delete");
    let gone = runc.state(id).expect_err("deleted container");
    assert!(gone.is_not_found(), "{gone}");
}

#[test]
fn kill_stops_a_running_container() {
    let t = TestRunc::new();
    let bundle = Bundle::busybox(&["sleep", "300"]).expect("bundle");
    let id = "killed";
    let pid = t
        .runc
        .create(id, bundle.path(), CreateOptions::default())
        .expect("create");
    t.runc.start(id).expect("start");
    t.runc.kill(id, 9, false).expect("kill");
    assert_eq!(exit_code(pid), 128 + 9);
    wait_for(&t.runc, id, Status::Stopped);
    // A second kill finds nothing to signal: "not running", not "not found".
    let again = t
        .runc
        .kill(id, 9, false)
        .expect_err("kill of a stopped container");
    assert!(again.is_not_running() && !again.is_not_found(), "{again}");
    t.runc.delete(id, false).expect("delete");
}

#[test]
fn foreground_run_and_exec_return_exit_codes() {
    let t = TestRunc::new();
    let bundle = Bundle::busybox(&["sh", "-c", "echo ran; exit 7"]).expect("bundle");
    let (io, pipes) = ProcessIo::pipes(PipeSpec {
        stdout: true,
        ..Default::default()
    })
    .expect("pipes");
    let status = t
        .runc
        .run(
            "fg-run",
            bundle.path(),
            CreateOptions {
                io: Some(io),
                ..Default::default()
            },
        )
        .expect("run");
    assert_eq!(status.code(), Some(7));
    assert_eq!(read(pipes.stdout), "ran\n");
    t.runc.delete("fg-run", true).expect("delete");

    let sleeper = Bundle::busybox(&["sleep", "300"]).expect("bundle");
    let pid = t
        .runc
        .run_detached("fg-exec", sleeper.path(), CreateOptions::default())
        .expect("run detached");
    let process = ProcessBuilder::default()
        .args(vec!["sh".to_string(), "-c".into(), "exit 4".into()])
        .cwd("/")
        .build()
        .expect("process");
    let status = t
        .runc
        .exec("fg-exec", &process, ExecOptions::default())
        .expect("exec");
    assert_eq!(status.code(), Some(4));
    t.runc.kill("fg-exec", 9, true).expect("kill");
    assert_eq!(exit_code(pid), 137);
    t.runc.delete("fg-exec", true).expect("delete");
}

#[test]
fn terminal_arrives_through_the_console_socket() {
    let t = TestRunc::new();
    let bundle = Bundle::busybox(&["sh", "-c", "tty; stty size; echo tty-ok"]).expect("bundle");
    bundle
        .edit_spec(|spec| {
            spec["process"]["terminal"] = true.into();
            spec["process"]["consoleSize"] = serde_json::json!({"height": 33, "width": 101});
        })
        .expect("spec");
    let console = ConsoleSocket::new().expect("console socket");
    let id = "tty";
    let pid = t
        .runc
        .create(
            id,
            bundle.path(),
            CreateOptions {
                console_socket: Some(console.path().to_owned()),
                ..Default::default()
            },
        )
        .expect("create");
    let master: OwnedFd = console.receive(Duration::from_secs(5)).expect("pty master");
    t.runc.start(id).expect("start");
    let mut file = std::fs::File::from(master);
    let mut out = Vec::new();
    let mut buf = [0u8; 1024];
    // Reading the master ends with EIO once the last slave fd closes.
    while let Ok(n) = file.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    let out = String::from_utf8_lossy(&out);
    assert_eq!(exit_code(pid), 0);
    assert!(out.contains("/dev/pts/"), "{out}");
    assert!(out.contains("33 101"), "{out}");
    assert!(out.contains("tty-ok"), "{out}");
    t.runc.delete(id, true).expect("delete");
}

#[test]
fn fifos_carry_stdin_and_stdout() {
    use nix::sys::stat::Mode;
    use std::os::unix::fs::OpenOptionsExt;

    let t = TestRunc::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let (stdin_path, stdout_path) = (dir.path().join("stdin"), dir.path().join("stdout"));
    for path in [&stdin_path, &stdout_path] {
        nix::unistd::mkfifo(path, Mode::from_bits_truncate(0o600)).expect("mkfifo");
    }
    // containerd's side: it holds the stdout reader open before the task starts.
    let mut reader = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(&stdout_path)
        .expect("open stdout reader");
    let io = ProcessIo::fifos(Some(&stdin_path), Some(&stdout_path), None).expect("fifos");
    let bundle = Bundle::busybox(&["sh", "-c", "read line; echo fifo:$line"]).expect("bundle");
    let pid = t
        .runc
        .run_detached(
            "fifo",
            bundle.path(),
            CreateOptions {
                io: Some(io),
                ..Default::default()
            },
        )
        .expect("run");
    let mut writer = std::fs::OpenOptions::new()
        .write(true)
        .open(&stdin_path)
        .expect("open stdin writer");
    writer.write_all(b"piped\n").expect("write");
    drop(writer);
    assert_eq!(exit_code(pid), 0);
    let mut out = String::new();
    reader.read_to_string(&mut out).expect("read");
    assert_eq!(out, "fifo:piped\n");
    t.runc.delete("fifo", true).expect("delete");

    let lonely = dir.path().join("no-reader");
    nix::unistd::mkfifo(&lonely, Mode::from_bits_truncate(0o600)).expect("mkfifo");
    let err = ProcessIo::fifos(None, Some(&lonely), None).expect_err("no reader");
    assert!(err.to_string().contains("has no reader"), "{err}");
}
