//! Retention: deleting finished executions once they are old enough (django-pq's
//! `result_ttl`, django-q's `Q_SAVE_LIMIT`).
//!
//! Each pass deletes the executions whose TTL has run out (their call's or their task's,
//! else [`Config::default_ttl`], the worker's `--result-ttl`), then the successes beyond the
//! [`Config::save_limit`] newest (`--save-limit`; failures are always kept). It deletes in
//! statements of [`RETENTION_BATCH`] rows, each its own short transaction (on PostgreSQL
//! skipping rows others hold), so that it never holds the write lock long enough to delay
//! claims. A retry chain goes from its last execution back, so it is never cut short; an
//! execution waits for its hook. A flow's executions are kept while it runs and go with the
//! execution that ended it: once that one's TTL has run out and it is deleted, the flow, its
//! steps and its other executions are deleted together. `app purge --older-than` deletes old
//! executions by hand.

use std::time::Duration;

use chrono::{DateTime, Utc};
use toosimple_core::{Error, Store, TaskExec, Ttl};

use super::check_interval;

/// Time between retention passes: a minute, so that a TTL is honoured within about a minute;
/// a pass with nothing expired is one indexed look.
pub const DEFAULT_RETENTION_INTERVAL: Duration = Duration::from_secs(60);

/// Rows per delete: small enough that each statement holds SQLite's write lock for a few
/// milliseconds only.
pub const RETENTION_BATCH: usize = 500;

/// Flows per delete: each takes its executions along, so fewer than executions.
const FLOWS_BATCH: i64 = 50;

/// Batches per pass at most: a huge backlog of expired rows is worked off over several
/// passes rather than in one long one.
const MAX_BATCHES_PER_PASS: usize = 200;

/// How retention runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Time between passes.
    pub interval: Duration,
    /// How long an execution without a TTL of its own (its call's or its task's) is kept
    /// once finished; `None` (or [`Ttl::Keep`]) keeps it until purged.
    pub default_ttl: Option<Ttl>,
    /// How many of the newest successes (without a TTL of their own) are kept; `None` keeps
    /// them all. Failures are always kept.
    pub save_limit: Option<u64>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            interval: DEFAULT_RETENTION_INTERVAL,
            default_ttl: None,
            save_limit: None,
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
    /// How many executions were deleted because their TTL ran out.
    pub deleted: usize,
    /// How many successes were deleted beyond the save limit.
    pub over_save_limit: usize,
    /// How many finished flows were deleted with their executions (their final execution
    /// had expired).
    pub flows: usize,
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
    /// retry chain from its end back, so a batch may free the next one's rows), then the
    /// successes beyond the save limit.
    pub fn run_once(&self, store: &Store, now: DateTime<Utc>) -> Result<Report, Error> {
        let mut report = Report::default();
        for _ in 0..MAX_BATCHES_PER_PASS {
            let deleted =
                TaskExec::delete_expired_in(store, now, self.config.default_ttl, RETENTION_BATCH)?;
            report.deleted += deleted;
            if deleted == 0 {
                break;
            }
        }
        if let Some(keep) = self.config.save_limit {
            for _ in 0..MAX_BATCHES_PER_PASS {
                let deleted = TaskExec::delete_over_save_limit_in(store, keep, RETENTION_BATCH)?;
                report.over_save_limit += deleted;
                if deleted == 0 {
                    break;
                }
            }
        }
        for _ in 0..MAX_BATCHES_PER_PASS {
            let deleted = store.delete_expired_flows(FLOWS_BATCH)?;
            report.flows += deleted;
            if deleted == 0 {
                break;
            }
        }
        Ok(report)
    }
}
