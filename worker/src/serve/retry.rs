//! Retrying calls to the coordinator and the store: transient failures (the server is
//! restarting, the network dropped) are retried with exponential backoff, capped, with a
//! log line per retry; anything else is returned at once. A retry loop ends early when
//! one of its stop signals fires or its time budget is spent, so a stopping worker or a
//! revoked lease never waits on a server that is gone.

use std::future::Future;
use std::time::{Duration, Instant};

use tonic::{Code, Status};

use crate::serve::shutdown::Shutdown;

/// First pause after a failure.
pub const INITIAL_BACKOFF: Duration = Duration::from_millis(100);
/// Longest pause between two tries: a restarted coordinator is noticed within this.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Whether a gRPC failure may go away by itself: the server is unreachable, overloaded or
/// failed internally (for the coordinator, typically its store), as opposed to an answer
/// about the request (not found, refused, invalid).
pub fn transient_status(s: &Status) -> bool {
    matches!(
        s.code(),
        Code::Unavailable
            | Code::DeadlineExceeded
            | Code::Unknown
            | Code::Aborted
            | Code::ResourceExhausted
            | Code::Internal
    )
}

/// A failure as one short log line.
pub trait Describe {
    /// What went wrong, without the transport's internals.
    fn describe(&self) -> String;
}

impl Describe for Status {
    fn describe(&self) -> String {
        format!("{:?}: {}", self.code(), self.message())
    }
}

impl Describe for wick_common::Error {
    fn describe(&self) -> String {
        self.to_string()
    }
}

/// When a retry loop gives up on a transient failure.
pub struct Limits<'a> {
    /// Signals that end the loop after a failed try (the first try is always made).
    pub stop: &'a [&'a Shutdown],
    /// Total time after which the last failure is returned; `None` = retry until stopped.
    pub budget: Option<Duration>,
}

/// How a retry loop ended without a success.
#[derive(Debug, thiserror::Error)]
pub enum RetryError<E> {
    /// A failure that retrying does not fix, or the last one when the budget ran out.
    #[error("{0}")]
    Failed(E),
    /// A stop signal fired while failures were being retried; holds the last failure.
    #[error("stopped while retrying: {0}")]
    Stopped(E),
}

/// Runs `call` until it succeeds, fails for good (`transient` says no), or `limits` end it.
/// `what` names the operation in the log lines.
pub async fn retry<T, E, F, Fut>(
    what: &str,
    limits: Limits<'_>,
    transient: impl Fn(&E) -> bool,
    mut call: F,
) -> Result<T, RetryError<E>>
where
    E: Describe,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let start = Instant::now();
    let mut pause = INITIAL_BACKOFF;
    loop {
        let err = match call().await {
            Ok(v) => return Ok(v),
            Err(e) if !transient(&e) => return Err(RetryError::Failed(e)),
            Err(e) => e,
        };
        if limits.stop.iter().any(|s| s.is_triggered()) {
            return Err(RetryError::Stopped(err));
        }
        if limits.budget.is_some_and(|b| start.elapsed() + pause > b) {
            return Err(RetryError::Failed(err));
        }
        tracing::warn!("{what} failed ({}); retrying in {pause:?}", err.describe());
        let stopped = async {
            match limits.stop {
                [] => std::future::pending().await,
                stops => {
                    futures::future::select_all(stops.iter().map(|s| Box::pin(s.wait()))).await
                }
            };
        };
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = stopped => return Err(RetryError::Stopped(err)),
        }
        pause = (pause * 2).min(MAX_BACKOFF);
    }
}

impl<E> RetryError<E> {
    /// The failure, however the loop ended.
    pub fn into_inner(self) -> E {
        match self {
            RetryError::Failed(e) | RetryError::Stopped(e) => e,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test]
    async fn retries_transient_failures_and_stops_on_permanent_ones() {
        let tries = AtomicUsize::new(0);
        let limits = Limits {
            stop: &[],
            budget: None,
        };
        let r = retry("call", limits, transient_status, || async {
            match tries.fetch_add(1, Ordering::SeqCst) {
                0..=2 => Err(Status::unavailable("down")),
                _ => Ok(7),
            }
        })
        .await;
        assert_eq!(r.unwrap(), 7);
        assert_eq!(tries.load(Ordering::SeqCst), 4);

        let r: Result<(), _> = retry(
            "call",
            Limits {
                stop: &[],
                budget: None,
            },
            transient_status,
            || async { Err(Status::failed_precondition("lease ended")) },
        )
        .await;
        assert!(matches!(r, Err(RetryError::Failed(s)) if s.code() == Code::FailedPrecondition));
    }

    #[tokio::test]
    async fn a_stop_signal_or_the_budget_ends_the_loop() {
        let stop = Shutdown::new();
        stop.trigger();
        let limits = Limits {
            stop: &[&stop],
            budget: None,
        };
        let r: Result<(), _> = retry("call", limits, transient_status, || async {
            Err(Status::unavailable("down"))
        })
        .await;
        assert!(matches!(r, Err(RetryError::Stopped(_))));

        let limits = Limits {
            stop: &[],
            budget: Some(Duration::from_millis(300)),
        };
        let r: Result<(), _> = retry("call", limits, transient_status, || async {
            Err(Status::unavailable("down"))
        })
        .await;
        assert!(matches!(r, Err(RetryError::Failed(_))));
    }
}
