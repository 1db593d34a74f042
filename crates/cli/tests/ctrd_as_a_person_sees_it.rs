//! `ctrd` as a person uses it, in a real terminal (tmux): the image table on the screen, and
//! `run -t` whose container sees the terminal's size.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use ctrd_testbed::{Containerd, Daemon, ImageArchive, OurShim};

const IMAGE: &str = "docker.io/library/ctrd-tmux-busybox:latest";

/// A tmux server of our own (its own socket), killed when dropped.
struct Tmux {
    socket: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Tmux {
    fn start(width: u32, height: u32) -> Tmux {
        let dir = tempfile::tempdir().expect("tempdir");
        let socket = dir.path().join("tmux.sock");
        let tmux = Tmux { socket, _dir: dir };
        let status = tmux
            .command()
            .args([
                "new-session",
                "-d",
                "-x",
                &width.to_string(),
                "-y",
                &height.to_string(),
            ])
            .args(["-s", "ctrd", "sh"])
            .status()
            .expect("tmux (run scripts/setup-testbed.sh)");
        assert!(status.success(), "tmux new-session");
        tmux
    }

    fn command(&self) -> Command {
        let mut c = Command::new("tmux");
        c.arg("-S").arg(&self.socket);
        c
    }

    fn type_line(&self, line: &str) {
        let status = self
            .command()
            .args(["send-keys", "-t", "ctrd", "-l", line])
            .status()
            .expect("tmux send-keys");
        assert!(status.success());
        let status = self
            .command()
            .args(["send-keys", "-t", "ctrd", "Enter"])
            .status()
            .expect("tmux send-keys");
        assert!(status.success());
    }

    fn screen(&self) -> String {
        let out = self
            .command()
            .args(["capture-pane", "-p", "-t", "ctrd"])
            .output()
            .expect("tmux capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until the screen contains `needle`; returns the screen.
    fn wait_for(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let screen = self.screen();
            if screen.contains(needle) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "screen never showed {needle:?}:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.command().arg("kill-server").status();
    }
}

fn scenario(daemon: Daemon, shim: &OurShim, archive: &Path) {
    let containerd =
        Containerd::start_with_path(daemon, &[shim.path()]).unwrap_or_else(|e| panic!("{e}"));
    let ctrd = format!(
        "{} -a {} -n tmux-{}",
        env!("CARGO_BIN_EXE_ctrd"),
        containerd.grpc_address().display(),
        daemon.version().replace('.', "-")
    );
    let tmux = Tmux::start(250, 30);
    tmux.type_line(&format!(
        "{ctrd} images import {} && echo IMPORT''ED",
        archive.display()
    ));
    tmux.wait_for("IMPORTED");
    tmux.type_line(&format!("clear; {ctrd} images ls && echo LIST''ED"));
    let screen = tmux.wait_for("LISTED");
    let header = screen
        .lines()
        .find(|l| l.starts_with("REF"))
        .expect("table header");
    let row = screen
        .lines()
        .find(|l| l.starts_with(IMAGE))
        .expect("image row");
    for column in ["TYPE", "DIGEST", "SIZE"] {
        let at = header.find(column).expect("column");
        assert_ne!(row.as_bytes().get(at - 1), None, "row reaches {column}");
        assert_eq!(&row[at - 3..at], "   ", "{column} aligned:\n{screen}");
    }
    tmux.type_line(&format!(
        "clear; {ctrd} run --rm -t {IMAGE} tty-1 sh -c 'stty size; tty'; echo EX''IT=$?"
    ));
    let screen = tmux.wait_for("EXIT=");
    assert!(
        screen.contains("30 250"),
        "the container sees the terminal's size:\n{screen}"
    );
    assert!(screen.contains("/dev/pts/"), "{screen}");
    assert!(screen.contains("EXIT=0"), "{screen}");
    tmux.type_line(&format!("clear; {ctrd} images rm {IMAGE}; echo REMOV''ED"));
    tmux.wait_for("REMOVED");
}

#[test]
fn ctrd_as_a_person_sees_it() {
    let shim = OurShim::build().unwrap_or_else(|e| panic!("{e}"));
    let archive = ImageArchive::busybox(IMAGE).expect("image archive");
    for daemon in Daemon::selected() {
        scenario(daemon, &shim, &archive.path());
    }
}
