//! Schedules: each due occurrence of a schedule becomes an execution, exactly once across
//! workers (the store locks the schedule rows and commits the occurrence with its `last_due`).
//!
//! A worker materializes the schedules of the queues it serves (or those without a queue), at
//! its tick and at each occurrence, so that a schedule every second runs every second.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use toosimple_core::store::{MaterializeReport, QueueSelection};
use toosimple_core::{Error, ScheduleDef, Store};

use super::{DEFAULT_INTERVAL, check_interval};

/// How materializing runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Whether this worker materializes schedules at all (`--no-schedules` turns it off).
    pub enabled: bool,
    /// The longest time between passes (the worker's `--tick`); a pass also runs at each
    /// occurrence.
    pub interval: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            enabled: true,
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

/// The schedules duty of one worker.
#[derive(Debug)]
pub struct Materializer {
    label: String,
    config: Config,
    /// The schedules this worker materializes.
    schedules: Arc<[&'static ScheduleDef]>,
    /// Every schedule linked in this binary: rows of other names are marked invalid.
    registered: Arc<[&'static str]>,
    /// Schedules already reported as broken: reported once, not at every pass.
    broken: HashSet<String>,
    /// The queues served: schedules stored at run time are materialized by the workers of
    /// their queue.
    queues: QueueSelection,
}

impl Materializer {
    /// The schedules duty of worker `label` serving `queues`: the linked schedules of those
    /// queues (a schedule without a queue of its own is its task's queue's, as the seed's
    /// schedules are); none at all when `config.enabled` is false.
    pub fn new(label: impl Into<String>, config: Config, queues: &QueueSelection) -> Materializer {
        let all = toosimple_core::schedules();
        let registered = all.iter().map(|s| s.name()).collect();
        let schedules = if config.enabled {
            all.into_iter()
                .filter(|s| {
                    // A schedule of a task this binary does not link stays with every worker,
                    // whose pass reports it.
                    let queue = s.queue().or_else(|| {
                        toosimple_core::find_task(s.task())
                            .ok()
                            .map(|task| task.queue())
                    });
                    queue.is_none_or(|q| queues.includes(q))
                })
                .collect()
        } else {
            Arc::from([])
        };
        Materializer {
            label: label.into(),
            config,
            schedules,
            registered,
            broken: HashSet::new(),
            queues: queues.clone(),
        }
    }

    /// Its configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Whether it has no schedule to materialize.
    pub fn is_empty(&self) -> bool {
        self.schedules.is_empty()
    }

    /// One pass at `now`: enqueues what is due by then, of the compiled schedules and of
    /// those stored at run time (`app schedule add`), which it reads at each pass.
    pub fn run_once(&self, store: &Store, now: DateTime<Utc>) -> Result<MaterializeReport, Error> {
        if !self.config.enabled {
            return Ok(MaterializeReport::default());
        }
        let mut report = if self.is_empty() {
            MaterializeReport::default()
        } else {
            store.materialize_schedules(&self.schedules, &self.registered, now)?
        };
        let stored = store.materialize_stored_schedules(&self.queues, now)?;
        report.created.extend(stored.created);
        report.enqueued.extend(stored.enqueued);
        report.failed.extend(stored.failed);
        Ok(report)
    }

    /// The first occurrence of any of its schedules after `now`.
    pub fn next_due(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.schedules.iter().filter_map(|s| s.next_due(now)).min()
    }

    /// Logs what a pass did; a schedule that cannot run is reported once.
    pub(crate) fn log(&mut self, report: &MaterializeReport) {
        let worker = &self.label;
        for (schedule, id, due) in &report.enqueued {
            tracing::info!(%worker, schedule, id, %due, "schedule occurrence enqueued");
        }
        for name in &report.created {
            tracing::info!(%worker, schedule = name, "schedule registered");
        }
        if report.invalidated > 0 {
            tracing::warn!(%worker, "{} schedule row(s) have no registered schedule any more: marked invalid", report.invalidated);
        }
        for (name, reason) in &report.failed {
            if self.broken.insert(name.clone()) {
                tracing::error!(%worker, schedule = name, "schedule cannot run: {reason}");
            }
        }
    }
}
