//! A caller's deadline for the async commands (feature `async`).
//!
//! A shim answers requests that carry a deadline (ttrpc's `timeout_nano`). Every runc command
//! run while serving such a request must end by then: a runc that hangs is killed when the
//! deadline passes (through the same pidfd as the configured [timeout](crate::RuncBuilder::timeout)),
//! reaped, and the call fails with [`Error::DeadlineExceeded`](crate::Error::DeadlineExceeded).
//!
//! The deadline travels with the task that serves the request, as a Go `context` would travel
//! with the call: wrap the request's future in [`with_deadline`] and every [`AsyncRunc`]
//! command awaited inside it is limited, however deep in the handler it runs. Clean-up that
//! must run after the deadline has passed (removing what a killed `runc create` left) goes in
//! [`without_deadline`]. Commands that last as long as their process (foreground `run` and
//! `exec`, the event stream) are never limited.
//!
//! [`AsyncRunc`]: crate::AsyncRunc

use std::future::Future;
use std::time::{Duration, Instant};

tokio::task_local! {
    static DEADLINE: Option<Instant>;
}

/// Runs `work` with every runc command inside it limited by `deadline`. An inner
/// `with_deadline` may only shorten it.
pub async fn with_deadline<F: Future>(deadline: Instant, work: F) -> F::Output {
    let deadline = current().map_or(deadline, |outer| outer.min(deadline));
    DEADLINE.scope(Some(deadline), work).await
}

/// Runs `work` with no caller's deadline (the configured timeout still applies).
pub async fn without_deadline<F: Future>(work: F) -> F::Output {
    DEADLINE.scope(None, work).await
}

/// The deadline of the task now running, if any.
pub fn current() -> Option<Instant> {
    DEADLINE.try_with(|d| *d).ok().flatten()
}

/// What ends a limited command first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Limit {
    /// The configured timeout, counted from now.
    Timeout(Duration),
    /// The caller's deadline, this far from now.
    Deadline(Duration),
}

impl Limit {
    /// The nearer of the configured `timeout` and the task's deadline.
    pub(crate) fn of(timeout: Option<Duration>) -> Option<Limit> {
        let deadline = current().map(|d| d.saturating_duration_since(Instant::now()));
        match (timeout, deadline) {
            (Some(t), Some(d)) if t < d => Some(Limit::Timeout(t)),
            (_, Some(d)) => Some(Limit::Deadline(d)),
            (Some(t), None) => Some(Limit::Timeout(t)),
            (None, None) => None,
        }
    }

    /// How long the command may run.
    pub(crate) fn duration(self) -> Duration {
        match self {
            Limit::Timeout(d) | Limit::Deadline(d) => d,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn the_nearer_limit_wins_and_inner_deadlines_only_shorten() {
        assert_eq!(Limit::of(None), None);
        let secs = Duration::from_secs;
        assert_eq!(Limit::of(Some(secs(3))), Some(Limit::Timeout(secs(3))));
        let far = Instant::now() + secs(100);
        with_deadline(far, async {
            assert_eq!(Limit::of(Some(secs(3))), Some(Limit::Timeout(secs(3))));
            assert!(matches!(
                Limit::of(Some(secs(300))),
                Some(Limit::Deadline(_))
            ));
            with_deadline(far + secs(100), async {
                assert_eq!(current(), Some(far), "an inner deadline cannot extend");
            })
            .await;
            without_deadline(async { assert_eq!(current(), None) }).await;
        })
        .await;
        assert_eq!(current(), None);
    }
}
