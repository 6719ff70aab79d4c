//! The worker's background duties, one file each.
//!
//! Each duty has a `Config` with named defaults and a `validate`, an interval, and a
//! `run_once(&Store, now)` that does one pass at a chosen time and returns a report: the worker
//! calls it on its interval with its [`Clock`](crate::clock::Clock)'s time, and tests call it
//! directly with whatever time they need.
//!
//! - [`heartbeat`]: writes this worker's heartbeat, on a thread of its own so that no task can
//!   stop it, and re-measures the database's clock.
//! - [`rescue`]: interrupts and replaces the running executions of dead workers.
//! - [`wake`]: moves sleeping executions whose due has come to the queue (the worker does it
//!   in each round's transaction; `run_once` does it alone).
//! - [`schedules`]: enqueues the due occurrences of schedules.
//! - [`retention`]: deletes finished executions whose TTL ran out.
//! - [`flows`]: advances the flows whose current step ended outside a worker's round (a
//!   cancel before it ran); a worker advances the others as it records their outcome.
//! - [`hooks`]: takes the hooks of finished executions that no worker called (their worker
//!   died, or none ran them), for this worker to call.

pub mod flows;
pub mod heartbeat;
pub mod hooks;
pub mod rescue;
pub mod retention;
pub mod schedules;
pub mod wake;

use std::time::Duration;

use tokio::time::Instant;
use toosimple_core::Error;

/// The interval every duty but retention defaults to: the worker's default tick.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);

/// Refuses an interval of zero, which would spin.
fn check_interval(option: &str, interval: Duration) -> Result<(), Error> {
    if interval.is_zero() {
        return Err(Error::InvalidOption {
            option: option.to_string(),
            reason: "must be longer than zero".to_string(),
        });
    }
    Ok(())
}

/// When a duty runs next: due at once, then every `interval` after each run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Every {
    interval: Duration,
    next: Instant,
}

impl Every {
    pub(crate) fn new(interval: Duration) -> Every {
        Every {
            interval,
            next: Instant::now(),
        }
    }

    pub(crate) fn is_due(&self) -> bool {
        Instant::now() >= self.next
    }

    pub(crate) fn next(&self) -> Instant {
        self.next
    }

    /// Notes a run: the next is an interval away.
    pub(crate) fn ran(&mut self) {
        self.next = Instant::now() + self.interval;
    }
}
