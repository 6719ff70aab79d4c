//! Wake: `Sleeping` executions whose due has come (retries, `queue_at`) become `Queued`.
//!
//! The worker runs [`Wake::run_once`] at each tick, and a round whose claim comes up short
//! wakes in its own transaction and claims again ([`Store::exchange`]): a drain with a backlog
//! spends no statement per round on waking, a due retry waits at most a tick behind it, and
//! an idle worker claims a due row in the round that finds it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use toosimple_core::{Error, Store};

use super::{DEFAULT_INTERVAL, check_interval};

/// How waking runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Time between passes (the worker's `--tick`).
    pub interval: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            interval: DEFAULT_INTERVAL,
        }
    }
}

impl Config {
    /// Checks the interval is positive.
    pub fn validate(&self) -> Result<(), Error> {
        check_interval("--tick", self.interval)
    }
}

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// How many executions were woken.
    pub woken: usize,
}

/// The wake duty.
#[derive(Debug, Clone, Default)]
pub struct Wake {
    config: Config,
}

impl Wake {
    /// The wake duty.
    pub fn new(config: Config) -> Wake {
        Wake { config }
    }

    /// Its configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Wakes what is due at `now`.
    pub fn run_once(&self, store: &Store, now: DateTime<Utc>) -> Result<Report, Error> {
        Ok(Report {
            woken: store.wake(now)?,
        })
    }
}
