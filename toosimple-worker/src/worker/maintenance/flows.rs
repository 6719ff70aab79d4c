//! Flows left behind: a flow whose current step's execution ended without the flow moving on.
//!
//! The worker that records a step's outcome advances its flow in the same transaction, so a
//! crash cannot come between the two. An execution can still end outside a worker's round: a
//! step cancelled before it ran, one purged by hand, or one recorded by a worker of a version
//! without flows. Each pass finds those flows through the index of enqueued steps, and
//! advances each in a transaction of its own, under the flow's row lock: however many workers
//! sweep, and whether a worker records the same step meanwhile, each step is followed by
//! exactly one enqueue of the next (or the flow's end).

use std::time::Duration;

use chrono::{DateTime, Utc};
use toosimple_core::{Error, Store};

use super::check_interval;

/// Time between passes.
pub const DEFAULT_FLOWS_INTERVAL: Duration = Duration::from_secs(5);

/// Flows advanced per pass at most.
pub const FLOWS_BATCH: i64 = 100;

/// How the pass runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Time between passes.
    pub interval: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            interval: DEFAULT_FLOWS_INTERVAL,
        }
    }
}

impl Config {
    /// Checks the interval is positive.
    pub fn validate(&self) -> Result<(), Error> {
        check_interval("flows interval", self.interval)
    }
}

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// The flows this pass moved on (a step enqueued, or the flow ended).
    pub advanced: Vec<i64>,
}

/// The duty.
#[derive(Debug, Clone, Default)]
pub struct StalledFlows {
    config: Config,
}

impl StalledFlows {
    /// The duty.
    pub fn new(config: Config) -> StalledFlows {
        StalledFlows { config }
    }

    /// Its configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// One pass at `now`: advances up to [`FLOWS_BATCH`] flows whose current step ended.
    pub fn run_once(&self, store: &Store, now: DateTime<Utc>) -> Result<Report, Error> {
        let advanced = store.advance_stalled_flows(now, FLOWS_BATCH)?;
        if !advanced.is_empty() {
            tracing::info!(flows = ?advanced, "advanced flows whose step ended outside a worker's round");
        }
        Ok(Report { advanced })
    }
}
