//! The stream of `runc events`.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::Error;
use crate::blocking::Exit;
use crate::plan::Plan;
use crate::types::Event;

/// Parses one line of `runc events` output.
pub(crate) fn parse_line(command: &str, line: &str) -> Result<Event, Error> {
    serde_json::from_str(line).map_err(|e| Error::Parse {
        command: command.to_owned(),
        message: format!("{e} in {line:?}"),
    })
}

/// Events of one container, read from a running `runc events`; an iterator that ends when
/// runc exits (the container is gone). Dropping it stops runc.
pub struct EventStream {
    display: String,
    lines: Option<BufReader<ChildStdout>>,
    child: Child,
    exit: Option<Exit>,
}

impl std::fmt::Debug for EventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStream")
            .field("command", &self.display)
            .field("pid", &self.child.id())
            .finish_non_exhaustive()
    }
}

impl EventStream {
    pub(crate) fn new(plan: Plan, mut child: Child, exit: Exit) -> EventStream {
        EventStream {
            display: plan.display,
            lines: child.stdout.take().map(BufReader::new),
            child,
            exit: Some(exit),
        }
    }

    fn reap(&mut self) {
        match self.exit.take() {
            Some(Exit::Child) => {
                let _ = self.child.wait();
            }
            Some(Exit::Monitor(rx)) => {
                let _ = rx.blocking_recv();
            }
            None => {}
        }
    }
}

impl Iterator for EventStream {
    type Item = Result<Event, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        let lines = self.lines.as_mut()?;
        let mut line = String::new();
        loop {
            line.clear();
            match lines.read_line(&mut line) {
                Ok(0) => {
                    self.lines = None;
                    self.reap();
                    return None;
                }
                Ok(_) if line.trim().is_empty() => continue,
                Ok(_) => return Some(parse_line(&self.display, line.trim())),
                Err(e) => {
                    self.lines = None;
                    return Some(Err(Error::Io {
                        command: self.display.clone(),
                        context: "reading events",
                        error: e,
                    }));
                }
            }
        }
    }
}

impl Drop for EventStream {
    fn drop(&mut self) {
        if self.exit.is_some() {
            let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGKILL);
            self.reap();
        }
    }
}
