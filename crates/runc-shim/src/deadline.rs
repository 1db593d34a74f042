//! The deadline containerd puts on a request (ttrpc's `timeout_nano`), applied to the runc
//! commands run for it.
//!
//! containerd sends each task call with the time its caller still allows (`ctr --timeout`, a
//! CRI call's deadline). The Go shim runs runc under that deadline and go-runc kills runc when
//! it passes; this shim does the same through [`ctrd_runc::deadline`]: every runc command run
//! for the request is killed and reaped when the deadline passes, and the call answers
//! `DEADLINE_EXCEEDED` naming the command.
//!
//! The ttrpc server drops a handler that runs past `timeout_nano` and answers a bare
//! "timeout". So runc's deadline comes a little earlier ([`margin`]): the shim then has the time
//! to reap runc, remove what a killed `runc create` left, and answer with its own message.

use std::future::Future;
use std::time::{Duration, Instant};

use ctrd_api::ttrpc::r#async::TtrpcContext;

/// How long before the request's own deadline runc is killed: a tenth of the time the request
/// allows, at most half a second.
pub fn margin(allowed: Duration) -> Duration {
    (allowed / 10).min(Duration::from_millis(500))
}

/// The instant by which runc must be done for a request that arrived at `arrived` allowing
/// `timeout_nano` (0 or less: no deadline).
pub fn of(arrived: Instant, timeout_nano: i64) -> Option<Instant> {
    let allowed = Duration::from_nanos(u64::try_from(timeout_nano).ok().filter(|n| *n > 0)?);
    arrived.checked_add(allowed - margin(allowed))
}

/// Runs `work` (a request's handler) with the request's deadline on every runc command in it.
pub async fn within<F: Future>(ctx: &TtrpcContext, work: F) -> F::Output {
    match of(Instant::now(), ctx.timeout_nano) {
        Some(deadline) => ctrd_runc::deadline::with_deadline(deadline, work).await,
        None => work.await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runc_ends_a_little_before_the_request() {
        let now = Instant::now();
        assert_eq!(of(now, 0), None);
        assert_eq!(of(now, -5), None);
        assert_eq!(
            of(now, 2_000_000_000),
            Some(now + Duration::from_millis(1800))
        );
        assert_eq!(
            of(now, 60_000_000_000),
            Some(now + Duration::from_millis(59_500))
        );
    }
}
