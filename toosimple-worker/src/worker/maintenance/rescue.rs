//! Rescue: the running executions of dead workers become `Interrupted`, each with a
//! replacement, so that a crashed worker's tasks run again.
//!
//! A worker is dead when it recorded its stop, has no status row, or sent no heartbeat for
//! longer than its heartbeat timeout by `now`; `now` must be the database's clock (as every
//! worker's heartbeat is), else a worker whose machine runs fast takes live ones for dead.

use std::time::Duration;

use chrono::{DateTime, Utc};
use toosimple_core::{Error, Store};

use super::{DEFAULT_INTERVAL, check_interval};

/// How rescue runs.
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
    /// `(interrupted, replacement)` execution ids.
    pub rescued: Vec<(i64, i64)>,
    /// Rows of silent workers that are not rescuable yet (claimed within their worker's
    /// heartbeat timeout): a later pass takes them if the worker stays silent.
    pub awaiting: usize,
    /// Whether the pass rescued nothing because it waited too long for the database: the
    /// worker then waits a heartbeat timeout before it rescues again.
    pub deferred: bool,
}

/// The rescue duty of worker `label` (which never rescues its own executions).
#[derive(Debug, Clone)]
pub struct Rescuer {
    label: String,
    config: Config,
}

impl Rescuer {
    /// The rescue duty of worker `label`.
    pub fn new(label: impl Into<String>, config: Config) -> Rescuer {
        Rescuer {
            label: label.into(),
            config,
        }
    }

    /// Its configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// One pass at `now`: each dead worker's execution is rescued once, however many workers
    /// rescue at the same time.
    pub fn run_once(&self, store: &Store, now: DateTime<Utc>) -> Result<Report, Error> {
        let pass = store.rescue_pass(&self.label, now)?;
        Ok(Report {
            rescued: pass.rescued,
            awaiting: pass.awaiting,
            deferred: pass.deferred,
        })
    }
}
