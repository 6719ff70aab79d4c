//! Retention: deleting finished executions once they are old enough.
//!
//! Each pass deletes the executions whose call set a TTL (`CallOptions::ttl`, the CLI's
//! `enqueue --ttl`) once it has run out, in small batches so that it never holds the write
//! lock long enough to delay claims. A default TTL for every task (`Config::keep`) is not
//! applied yet; `app purge --older-than` deletes old executions by hand.

use std::time::Duration;

use chrono::{DateTime, Utc};
use toosimple_core::{Error, Store, TaskExec};

use super::check_interval;

/// Time between retention passes: a minute, so that a TTL is honoured within about a minute;
/// a pass with nothing expired is one indexed look.
pub const DEFAULT_RETENTION_INTERVAL: Duration = Duration::from_secs(60);

/// Rows per delete: small enough that each statement holds SQLite's write lock for a few
/// milliseconds only.
pub const RETENTION_BATCH: usize = 500;

/// Batches per pass at most: a huge backlog of expired rows is worked off over several
/// passes rather than in one long one.
const MAX_BATCHES_PER_PASS: usize = 200;

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

    /// One pass at `now`: deletes the executions whose TTL has run out, batch by batch (a
    /// retry chain from its end back, so a batch may free the next one's rows).
    pub fn run_once(&self, store: &Store, now: DateTime<Utc>) -> Result<Report, Error> {
        let mut report = Report::default();
        for _ in 0..MAX_BATCHES_PER_PASS {
            let deleted = TaskExec::delete_expired_in(store, now, RETENTION_BATCH)?;
            report.deleted += deleted;
            if deleted == 0 {
                break;
            }
        }
        Ok(report)
    }
}
