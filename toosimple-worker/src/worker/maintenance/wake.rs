//! Wake: `Sleeping` executions whose due has come (retries, `queue_at`) become `Queued`.
//!
//! The worker wakes in each round's transaction, just before it claims, so that a due retry is
//! claimed in the same commit ([`Store::exchange`]); [`Wake::run_once`] is the same step alone,
//! for tests and tools.

use std::time::Duration;

use chrono::{DateTime, Utc};
use toosimple_core::{Error, Store};

use super::{DEFAULT_INTERVAL, check_interval};

/// How waking runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Time between idle rounds, each of which wakes (the worker's `--tick`).
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
