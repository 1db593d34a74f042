//! The reaper collects every child and loses no exit: subscribers get exits that happen before
//! they read (even immediately after spawn), processes started through the reaper get their
//! own exit and only they do, and runc run through it as a process monitor works.
//! (Its own test binary: the reaper collects every child of the process.)

// The children are never waited on here on purpose: the reaper collects them.
#![allow(clippy::zombie_processes)]

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use ctrd_runc::{ProcessMonitor, Started};
use ctrd_shim::Reaper;

/// How a shim on `ctrd-runc` hands runc's processes to the reaper (as the runc shim does).
struct ReaperMonitor(Reaper);

impl ProcessMonitor for ReaperMonitor {
    fn start(&self, command: &mut Command) -> std::io::Result<Started> {
        let (child, exit) = self.0.spawn(command)?;
        Ok(Started { child, exit })
    }
}

fn pid_of(child: &std::process::Child) -> ctrd_shim::Pid {
    ctrd_shim::Pid::try_from(child.id()).expect("a child's pid")
}

async fn next_exits(sub: &mut ctrd_shim::ExitSubscription, n: usize) -> Vec<ctrd_shim::Exit> {
    let mut exits = Vec::new();
    while exits.len() < n {
        let exit = tokio::time::timeout(Duration::from_secs(10), sub.recv())
            .await
            .expect("exit within 10 s")
            .expect("subscription open");
        exits.push(exit);
    }
    exits
}

#[tokio::test(flavor = "current_thread")]
async fn every_exit_is_delivered_once_to_the_right_party() {
    ctrd_testbed::require_root().unwrap_or_else(|e| panic!("{e}"));
    let reaper = Reaper::start().expect("reaper");
    let mut sub = reaper.subscribe();

    // 50 children that exit at once, with distinct codes; the subscription predates them.
    let mut expected = std::collections::HashMap::new();
    for code in 0..50u32 {
        let child = Command::new("/bin/sh")
            .args(["-c", &format!("exit {code}")])
            .spawn()
            .expect("spawn");
        expected.insert(pid_of(&child), code);
    }
    // Let them all exit before anyone reads.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let exits = next_exits(&mut sub, 50).await;
    for exit in &exits {
        assert_eq!(Some(&exit.status), expected.get(&exit.pid), "{exit:?}");
    }

    // Killed by a signal: 128 + signal, as containerd reports it.
    let child = Command::new("/bin/sleep").arg("60").spawn().expect("spawn");
    pid_of(&child)
        .signal(nix::sys::signal::Signal::SIGKILL)
        .expect("kill");
    let exit = next_exits(&mut sub, 1).await[0];
    assert_eq!((exit.pid, exit.status), (pid_of(&child), 137));

    // Spawned through the reaper: the spawner gets the exit, subscribers do not.
    let (child, exit) = reaper
        .spawn(Command::new("/bin/sh").args(["-c", "exit 4"]))
        .expect("spawn");
    let status = tokio::time::timeout(Duration::from_secs(10), exit)
        .await
        .expect("exit within 10 s")
        .expect("delivered");
    assert_eq!(status.code(), Some(4));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        sub.try_recv().is_none_or(|e| e.pid != pid_of(&child)),
        "a spawned process's exit is not broadcast"
    );

    // runc through the reaper as its process monitor.
    let runc = ctrd_runc::Runc::builder()
        .monitor(Arc::new(ReaperMonitor(reaper.clone())))
        .timeout(Duration::from_secs(10))
        .build()
        .to_async();
    let version = runc
        .version()
        .await
        .expect("runc --version through the reaper");
    assert!(!version.runc.is_empty());
    let err = runc
        .state("no-such-container")
        .await
        .expect_err("unknown container");
    assert!(err.is_not_found(), "{err}");
}
