//! What `app status` reads, callable without the command line: the `views` benchmark of
//! toosimple-bench times it.
//!
//! ```no_run
//! let store = toosimple_core::default_store()?;
//! let status = toosimple_worker::status::Status::read(&store, chrono::Utc::now())?;
//! for count in &status.counts.per_queue {
//!     println!("{} {} {}", count.queue, count.state, count.shown());
//! }
//! # Ok::<(), toosimple_core::Error>(())
//! ```

use chrono::{DateTime, Utc};
use toosimple_core::{
    EXACT_COUNT_LIMIT, Error, ExecCounts, State, Store, TaskCount, TaskExec, TaskExecFilter,
    WorkerStatus,
};

/// How many running executions `status` lists.
pub const RUNNING_SHOWN: i64 = 20;

/// Everything `app status` shows.
#[derive(Debug, Clone)]
pub struct Status {
    /// Executions per state and per queue and state: exact up to
    /// [`EXACT_COUNT_LIMIT`] per state, estimates (marked `approximate`) beyond.
    pub counts: ExecCounts,
    /// Every worker status.
    pub workers: Vec<WorkerStatus>,
    /// Queued executions of tasks no online worker links.
    pub unknown: Vec<TaskCount>,
    /// Executions running now per worker label.
    pub running: Vec<(String, i64)>,
    /// The newest running executions, at most [`RUNNING_SHOWN`].
    pub running_execs: Vec<TaskExec>,
}

impl Status {
    /// Reads the status of `store` at `now`. Every read is bounded (counts, through the
    /// indexes), so that it answers in milliseconds beside millions of executions.
    pub fn read(store: &Store, now: DateTime<Utc>) -> Result<Status, Error> {
        Ok(Status {
            counts: TaskExec::view_counts_in(store, EXACT_COUNT_LIMIT)?,
            workers: WorkerStatus::list_in(store)?,
            unknown: TaskExec::unknown_to_online_workers_in(store, now)?,
            running: TaskExec::running_per_worker_in(store)?,
            running_execs: TaskExec::list_in(
                store,
                &TaskExecFilter::default()
                    .state(State::Processing)
                    .limit(RUNNING_SHOWN),
            )?,
        })
    }
}
