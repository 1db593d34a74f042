//! `update` changes the cgroup (read back from the cgroup files), `stats` and the `events`
//! stream report real figures, and `features` and `version` parse.

mod common;

use std::time::Duration;

use common::{TestRunc, exit_code};
use ctrd_runc::CreateOptions;
use ctrd_runc::spec::{LinuxMemoryBuilder, LinuxResourcesBuilder};
use ctrd_testbed::Bundle;

#[test]
fn update_stats_and_events() {
    let t = TestRunc::new();
    let runc = &t.runc;
    let bundle = Bundle::busybox(&["sleep", "300"]).expect("bundle");
    let id = "resources";
    let pid = runc
        .run_detached(id, bundle.path(), CreateOptions::default())
        .expect("run");

    let limit: i64 = 64 * 1024 * 1024;
    let resources = LinuxResourcesBuilder::default()
        .memory(
            LinuxMemoryBuilder::default()
                .limit(limit)
                .build()
                .expect("memory"),
        )
        .build()
        .expect("resources");
    runc.update(id, &resources).expect("update");
    assert_eq!(
        ctrd_testbed::cgroup::memory_limit(pid).expect("memory limit"),
        limit as u64
    );

    let stats = runc.stats(id).expect("stats");
    assert_eq!(stats.memory.usage.limit, limit as u64);
    assert!(stats.memory.usage.usage > 0, "memory usage is reported");
    assert!(stats.pids.current >= 1, "pids are reported");

    let mut events = runc.events(id, Duration::from_millis(100)).expect("events");
    let event = events.next().expect("an event").expect("parses");
    assert_eq!((event.kind.as_str(), event.id.as_str()), ("stats", id));
    assert_eq!(
        event.data.expect("stats data").memory.usage.limit,
        limit as u64
    );
    drop(events);

    runc.kill(id, 9, false).expect("kill");
    assert_eq!(exit_code(pid), 137);
    runc.delete(id, true).expect("delete");
}

#[test]
fn features_and_version() {
    let t = TestRunc::new();
    let version = t.runc.version().expect("version");
    assert!(
        !version.runc.is_empty() && !version.spec.is_empty(),
        "{version:?}"
    );
    let features = t.runc.features().expect("features");
    assert!(features.oci_version_max.starts_with("1."), "{features:?}");
    let linux = features.linux.expect("linux features");
    assert!(linux.namespaces.iter().any(|n| n == "pid"));
    assert!(features.mount_options.iter().any(|o| o == "bind"));
}
