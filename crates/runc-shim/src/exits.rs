//! Exit routing: which process an exit the reaper collected ends, and what follows from it.
//!
//! An exit can arrive before the shim knows its pid: a container's init or an exec may end
//! while `runc create`/`exec`/`restore` is still writing the pid file. Such exits are kept
//! while a runc call that may start a process is in flight, and only a call that began
//! before the exit happened may claim it. So an old exit of a pid the kernel since reused for
//! a new process is never applied to the new one, and kept exits expire as soon as no call
//! in flight could claim them.

use std::collections::{HashMap, VecDeque};
use std::time::SystemTime;

use ctrd_api::containerd::events::TaskExit;
use ctrd_api::prost_types::Timestamp;
use ctrd_runc::AsyncRunc;
use ctrd_shim::{Exit, Pid};

use crate::container::Container;

/// Unclaimed exits are kept this many at most.
const EARLY_EXITS: usize = 1024;

/// What the service does once it has released its lock.
#[derive(Debug)]
pub enum Effect {
    /// Publish this exit.
    Publish(TaskExit),
    /// Kill the remaining processes of a container whose init exited and that has no pid
    /// namespace of its own (`runc kill --all`).
    KillAll {
        /// The container id.
        id: String,
        /// Its runc.
        runc: AsyncRunc,
    },
}

/// A runc call in flight that may start a process whose pid is not known yet.
#[derive(Debug)]
pub struct Call {
    id: u64,
    since: SystemTime,
}

/// Routes exits to processes and keeps those that come before their pid is known.
#[derive(Debug, Default)]
pub struct ExitRouter {
    early: VecDeque<Exit>,
    calls: Vec<(u64, SystemTime)>,
    next_call: u64,
}

impl ExitRouter {
    /// Marks the start of a runc call that may start a process; call it before runc runs.
    pub fn begin(&mut self) -> Call {
        self.begin_at(SystemTime::now())
    }

    fn begin_at(&mut self, since: SystemTime) -> Call {
        self.next_call += 1;
        self.calls.push((self.next_call, since));
        Call {
            id: self.next_call,
            since,
        }
    }

    /// Marks the end of a call (after it claimed its process's exit, or failed).
    pub fn end(&mut self, call: Call) {
        self.calls.retain(|(id, _)| *id != call.id);
        self.expire();
    }

    /// Routes an exit: applied to the live process with its pid, else kept for a call in
    /// flight that began before it, else dropped (no process of ours).
    pub fn route(
        &mut self,
        containers: &mut HashMap<String, Container>,
        exit: Exit,
    ) -> Vec<Effect> {
        if let Some(effects) = apply(containers, exit) {
            return effects;
        }
        if self.calls.iter().any(|(_, since)| *since <= exit.at) {
            if self.early.len() >= EARLY_EXITS {
                self.early.pop_front();
            }
            self.early.push_back(exit);
        }
        Vec::new()
    }

    /// Applies a kept exit of `pid` that happened during `call`, now that the process with
    /// that pid is known.
    pub fn claim(
        &mut self,
        containers: &mut HashMap<String, Container>,
        pid: Pid,
        call: &Call,
    ) -> Vec<Effect> {
        let found = self
            .early
            .iter()
            .position(|e| e.pid == pid && e.at >= call.since);
        match found.and_then(|i| self.early.remove(i)) {
            Some(exit) => apply(containers, exit).unwrap_or_default(),
            None => Vec::new(),
        }
    }

    /// Drops kept exits that no call in flight can claim.
    fn expire(&mut self) {
        match self.calls.iter().map(|(_, since)| *since).min() {
            Some(oldest) => self.early.retain(|e| e.at >= oldest),
            None => self.early.clear(),
        }
    }

    /// How many exits are kept (for tests).
    #[cfg(test)]
    fn kept(&self) -> usize {
        self.early.len()
    }
}

/// The protobuf form of a time.
pub fn timestamp(at: SystemTime) -> Timestamp {
    let d = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(d.subsec_nanos()).unwrap_or(0),
    }
}

/// Applies an exit to the live process with its pid; `None` when no process has it.
fn apply(containers: &mut HashMap<String, Container>, exit: Exit) -> Option<Vec<Effect>> {
    let at = timestamp(exit.at);
    for container in containers.values_mut() {
        if container.init.state().live_pid() == Some(exit.pid) {
            let mut effects = Vec::new();
            if container.shared_pid_ns {
                effects.push(Effect::KillAll {
                    id: container.id.clone(),
                    runc: container.runc.clone(),
                });
            }
            if container.has_live_execs() {
                container.init_exit = Some((exit.status, at));
            } else {
                effects.extend(finish_init(container, exit.status, at));
            }
            return Some(effects);
        }
        let exec = container
            .execs
            .values()
            .find(|e| e.state().live_pid() == Some(exit.pid));
        if let Some(exec) = exec {
            let mut effects = Vec::new();
            if exec.stopped(exit.status, at).is_ok() {
                effects.push(Effect::Publish(TaskExit {
                    container_id: container.id.clone(),
                    id: exec.exec_id.clone(),
                    pid: exit.pid.into(),
                    exit_status: exit.status,
                    exited_at: Some(at),
                }));
            }
            if !container.has_live_execs()
                && let Some((status, at)) = container.init_exit.take()
            {
                effects.extend(finish_init(container, status, at));
            }
            return Some(effects);
        }
    }
    None
}

/// Stops the init process and says so; nothing if it had stopped already.
fn finish_init(container: &mut Container, exit_status: u32, at: Timestamp) -> Option<Effect> {
    let pid = container.init.state().pid();
    match container.init.stopped(exit_status, at) {
        Ok(_) => Some(Effect::Publish(TaskExit {
            container_id: container.id.clone(),
            id: container.id.clone(),
            pid: Pid::to_proto(pid),
            exit_status,
            exited_at: Some(at),
        })),
        Err(e) => {
            tracing::warn!(id = %container.id, error = %e, "exit of init not applied");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::process::{Process, State};
    use crate::stdio::Stdio;

    /// Stands in for the shim's reaper: hands out pids (reusing them on demand) and reports
    /// exits at times of its own clock.
    struct FakeMonitor {
        clock: SystemTime,
        next_pid: i32,
    }

    impl FakeMonitor {
        fn new() -> FakeMonitor {
            FakeMonitor {
                clock: SystemTime::UNIX_EPOCH + Duration::from_secs(1_000),
                next_pid: 100,
            }
        }

        fn tick(&mut self) -> SystemTime {
            self.clock += Duration::from_millis(1);
            self.clock
        }

        fn spawn(&mut self) -> Pid {
            self.next_pid += 1;
            Pid::from_raw(self.next_pid).expect("pid")
        }

        fn exit(&mut self, pid: Pid, status: u32) -> Exit {
            Exit {
                pid,
                status,
                at: self.tick(),
            }
        }
    }

    fn container(id: &str, init: State) -> Container {
        Container {
            id: id.to_owned(),
            bundle: "/nonexistent".into(),
            rootfs: None,
            runc: ctrd_runc::Runc::builder().build().to_async(),
            init: Process::new(String::new(), Stdio::default(), None, init),
            execs: HashMap::new(),
            shared_pid_ns: false,
            init_exit: None,
            restore: None,
            cgroup: None,
            life: Default::default(),
        }
    }

    fn add_exec(c: &mut Container, exec_id: &str, state: State) {
        c.execs.insert(
            exec_id.to_owned(),
            Process::new(exec_id.to_owned(), Stdio::default(), None, state),
        );
    }

    /// (process id, pid, status) of each published exit, in order.
    fn published(effects: &[Effect]) -> Vec<(String, u32, u32)> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Publish(exit) => Some((exit.id.clone(), exit.pid, exit.exit_status)),
                Effect::KillAll { .. } => None,
            })
            .collect()
    }

    #[test]
    fn exec_exits_are_published_before_the_init_exit_they_outlive() {
        let mut monitor = FakeMonitor::new();
        let (init, exec) = (monitor.spawn(), monitor.spawn());
        let mut containers = HashMap::new();
        let mut c = container("c1", State::Running { pid: init });
        add_exec(&mut c, "e1", State::Running { pid: exec });
        containers.insert("c1".to_owned(), c);
        let mut router = ExitRouter::default();

        let effects = router.route(&mut containers, monitor.exit(init, 0));
        assert!(published(&effects).is_empty(), "init waits for its exec");
        assert!(!containers["c1"].is_running());
        let effects = router.route(&mut containers, monitor.exit(exec, 137));
        assert_eq!(
            published(&effects),
            [
                ("e1".to_owned(), u32::from(exec), 137),
                ("c1".to_owned(), u32::from(init), 0)
            ]
        );
        assert!(matches!(
            containers["c1"].init.state(),
            State::Stopped { status: 0, .. }
        ));
    }

    #[test]
    fn an_exit_before_the_pid_is_known_is_claimed_by_its_call() {
        let mut monitor = FakeMonitor::new();
        let mut router = ExitRouter::default();
        let mut containers = HashMap::new();
        let call = router.begin_at(monitor.tick());
        // The process ends while runc is still running: nobody knows its pid yet.
        let pid = monitor.spawn();
        let effects = router.route(&mut containers, monitor.exit(pid, 3));
        assert!(effects.is_empty());
        // runc returns; the container is registered, then claims the exit.
        containers.insert("c1".to_owned(), container("c1", State::Created { pid }));
        let effects = router.claim(&mut containers, pid, &call);
        router.end(call);
        assert_eq!(published(&effects), [("c1".to_owned(), u32::from(pid), 3)]);
        assert_eq!(router.kept(), 0);
    }

    #[test]
    fn an_old_exit_is_not_applied_to_a_new_process_with_the_same_pid() {
        let mut monitor = FakeMonitor::new();
        let mut router = ExitRouter::default();
        let mut containers = HashMap::new();
        // A call in flight keeps unknown exits; this one is of a process that ended before
        // the second call began.
        let first = router.begin_at(monitor.tick());
        let reused = monitor.spawn();
        router.route(&mut containers, monitor.exit(reused, 9));
        assert_eq!(router.kept(), 1);
        let second = router.begin_at(monitor.tick());
        // The kernel gives the same pid to the process the second call starts.
        containers.insert(
            "c2".to_owned(),
            container("c2", State::Created { pid: reused }),
        );
        let effects = router.claim(&mut containers, reused, &second);
        assert!(effects.is_empty(), "the old exit is not the new process's");
        assert!(containers["c2"].init.state().is_live());
        router.end(first);
        assert_eq!(router.kept(), 0, "no call in flight can claim it any more");
        let effects = router.route(&mut containers, monitor.exit(reused, 0));
        router.end(second);
        assert_eq!(
            published(&effects),
            [("c2".to_owned(), u32::from(reused), 0)]
        );
    }

    #[test]
    fn exits_of_unknown_pids_are_not_kept_without_a_call() {
        let mut monitor = FakeMonitor::new();
        let mut router = ExitRouter::default();
        let mut containers = HashMap::new();
        let stranger = monitor.spawn();
        assert!(
            router
                .route(&mut containers, monitor.exit(stranger, 0))
                .is_empty()
        );
        assert_eq!(router.kept(), 0);
    }

    #[test]
    fn a_process_exits_once() {
        let mut monitor = FakeMonitor::new();
        let pid = monitor.spawn();
        let mut containers = HashMap::new();
        containers.insert("c1".to_owned(), container("c1", State::Running { pid }));
        let mut router = ExitRouter::default();
        assert_eq!(
            published(&router.route(&mut containers, monitor.exit(pid, 1))).len(),
            1
        );
        assert!(
            router
                .route(&mut containers, monitor.exit(pid, 2))
                .is_empty(),
            "a stopped process's pid no longer routes"
        );
    }

    #[test]
    fn init_of_a_shared_pid_namespace_kills_the_rest() {
        let mut monitor = FakeMonitor::new();
        let pid = monitor.spawn();
        let mut c = container("c1", State::Running { pid });
        c.shared_pid_ns = true;
        let mut containers = HashMap::from([("c1".to_owned(), c)]);
        let effects = ExitRouter::default().route(&mut containers, monitor.exit(pid, 0));
        assert!(matches!(&effects[0], Effect::KillAll { id, .. } if id == "c1"));
        assert_eq!(published(&effects).len(), 1);
    }
}
