//! Retention: deleting finished executions once they are old enough.
//!
//! Not done yet: the duty is wired into the worker with its configuration and interval, and its
//! pass deletes nothing, so that the issue that adds retention fills in `run_once` only. Until
//! then `app purge --older-than` deletes old executions by hand.

use std::time::Duration;

use chrono::{DateTime, Utc};
use toosimple_core::{Error, Store};

use super::check_interval;

/// Time between retention passes: deleting old rows is not urgent.
pub const DEFAULT_RETENTION_INTERVAL: Duration = Duration::from_secs(3600);

/// How retention runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Time between passes.
    pub interval: Duration,
    /// Finished executions older than this are deleted; `None` keeps everything.
    pub keep: Option<Duration>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            interval: DEFAULT_RETENTION_INTERVAL,
            keep: None,
        }
    }
}

impl Config {
    /// Checks the interval is positive.
    pub fn validate(&self) -> Result<(), Error> {
        check_interval("retention interval", self.interval)
    }
}

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// How many executions were deleted.
    pub deleted: usize,
}

/// The retention duty.
#[derive(Debug, Clone, Default)]
pub struct Retention {
    config: Config,
}

impl Retention {
    /// The retention duty.
    pub fn new(config: Config) -> Retention {
        Retention { config }
    }

    /// Its configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// One pass at `now`; deletes nothing yet (see the module's docs).
    pub fn run_once(&self, store: &Store, now: DateTime<Utc>) -> Result<Report, Error> {
        let _ = (store, now);
        Ok(Report::default())
    }
}
