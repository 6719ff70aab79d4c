//! A database outage as the worker lives through it: logged once when it starts and once when
//! it ends, and retried with a growing pause instead of at every tick.

use std::time::Duration;

use tokio::time::Instant;
use toosimple_core::Error;

/// The first pause after a failure, doubled at each further failure up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(100);
/// The longest pause between retries: short, so that work resumes soon after the outage.
const MAX_PAUSE: Duration = Duration::from_secs(2);

/// The state of the current outage, if any.
#[derive(Debug, Default)]
pub(crate) struct Outage {
    since: Option<std::time::Instant>,
    retry_at: Option<Instant>,
    pause: Duration,
}

impl Outage {
    /// Notes a failed database operation: logs the outage's start, or lengthens the pause.
    pub(crate) fn failed(&mut self, error: &Error) {
        if self.since.is_none() {
            if matches!(error, Error::DatabaseFull { .. }) {
                tracing::error!(
                    "{}; finished tasks' outcomes are kept in memory and nothing new is claimed until there is room",
                    error.report()
                );
            } else {
                tracing::error!(
                    "database unavailable, retrying with backoff: {}",
                    error.report()
                );
            }
            self.since = Some(std::time::Instant::now());
            self.pause = FIRST_PAUSE;
        } else {
            self.pause = (self.pause * 2).min(MAX_PAUSE);
            tracing::debug!(
                "database still unavailable, next try in {:?}: {}",
                self.pause,
                error.report()
            );
        }
        self.retry_at = Some(Instant::now() + self.pause);
    }

    /// Notes a success; returns whether it ended an outage.
    pub(crate) fn ended(&mut self) -> bool {
        self.retry_at = None;
        match self.since.take() {
            Some(since) => {
                tracing::info!(
                    "database available again after {:.1} s",
                    since.elapsed().as_secs_f64()
                );
                true
            }
            None => false,
        }
    }

    /// Whether an outage is going on.
    pub(crate) fn is_down(&self) -> bool {
        self.since.is_some()
    }

    /// Whether the next retry is not due yet.
    pub(crate) fn waiting(&self) -> bool {
        self.retry_at.is_some_and(|at| Instant::now() < at)
    }

    /// When to try again, during an outage.
    pub(crate) fn retry_at(&self) -> Option<Instant> {
        self.retry_at
    }
}

/// Whether a worker that cannot start because of `error` should wait for its database rather
/// than exit: an outage (a server restarting or unreachable, a full disk, a dropped
/// connection) ends by itself, while a wrong URL, role or password does not.
pub(crate) fn worth_waiting_for(error: &Error) -> bool {
    match error {
        Error::DatabaseFull { .. } | Error::Pool { .. } | Error::Query { .. } => true,
        Error::Connect { reason, .. } => {
            let reason = reason.to_lowercase();
            ![
                "does not exist",
                "authentication",
                "permission denied",
                "pg_hba.conf",
                "password",
                "access denied",
                "unknown database",
            ]
            .iter()
            .any(|fatal| reason.contains(fatal))
        }
        _ => false,
    }
}
