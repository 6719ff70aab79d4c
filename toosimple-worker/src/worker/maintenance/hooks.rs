//! Hooks left behind: finished executions whose hook no worker called.
//!
//! The worker that records an outcome calls its hook at once (`worker/hooks.rs`). Some are
//! left: that worker died first, it was terminated, or no worker ran the execution at all (a
//! cancel). Each pass takes those (an execution no worker ran at once, the others once
//! `grace` has passed since they finished, which leaves their own worker time) and marks them
//! taken in one statement, so that two workers never both take one; the worker then calls
//! them as it calls its own. Only hooks this binary links are taken.

use std::time::Duration;

use chrono::{DateTime, Utc};
use toosimple_core::{Error, Store};

use super::check_interval;

/// Time between passes.
pub const DEFAULT_HOOKS_INTERVAL: Duration = Duration::from_secs(5);

/// How long after an execution finished its own worker has to call its hook before others
/// do: the default heartbeat timeout, after which a silent worker counts as dead anyway.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(300);

/// Executions taken per pass at most.
pub const HOOKS_BATCH: usize = 100;

/// How the pass runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Time between passes.
    pub interval: Duration,
    /// How long a finished execution's own worker has to call its hook.
    pub grace: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            interval: DEFAULT_HOOKS_INTERVAL,
            grace: DEFAULT_GRACE,
        }
    }
}

impl Config {
    /// Checks the interval is positive.
    pub fn validate(&self) -> Result<(), Error> {
        check_interval("hooks interval", self.interval)
    }
}

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// The executions taken, whose hooks the worker is to call.
    pub taken: Vec<i64>,
}

/// The duty.
#[derive(Debug, Clone, Default)]
pub struct LeftoverHooks {
    config: Config,
}

impl LeftoverHooks {
    /// The duty.
    pub fn new(config: Config) -> LeftoverHooks {
        LeftoverHooks { config }
    }

    /// Its configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// One pass at `now`: takes up to [`HOOKS_BATCH`] executions whose hook is due and that
    /// this binary can call.
    pub fn run_once(&self, store: &Store, now: DateTime<Utc>) -> Result<Report, Error> {
        let hooks = toosimple_core::hooks()?;
        if hooks.is_empty() {
            return Ok(Report::default());
        }
        let names: Vec<&str> = hooks.iter().map(|h| h.name()).collect();
        let grace =
            chrono::TimeDelta::from_std(self.config.grace).unwrap_or(chrono::TimeDelta::MAX);
        let taken = store.take_pending_hooks(now, grace, &names, HOOKS_BATCH)?;
        Ok(Report { taken })
    }
}
