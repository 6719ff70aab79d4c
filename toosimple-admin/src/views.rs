//! The data behind each page, read as the page reads it, without a request: what the
//! `views` benchmark of toosimple-bench times, and a start for a dashboard of your own.
//!
//! Each stays fast beside millions of executions: counts read a bounded number of rows per
//! state (estimates beyond [`EXACT_COUNT_LIMIT`], marked `approximate`), lists walk an index
//! in id order from the page's last id (keyset paging), the chart reads the last hour through
//! the index on finish times.
//!
//! ```no_run
//! let store = toosimple_core::default_store()?;
//! let overview = toosimple_admin::views::overview(&store, chrono::Utc::now(), toosimple_core::EXACT_COUNT_LIMIT)?;
//! println!("{} queued", overview.counts.state(toosimple_core::State::Queued));
//! # Ok::<(), toosimple_core::Error>(())
//! ```

use std::collections::HashMap;

use chrono::{DateTime, Utc};
pub use toosimple_core::EXACT_COUNT_LIMIT;
use toosimple_core::{
    ExecCounts, Result, ScheduleExec, State, Store, StoredSchedule, TaskCount, TaskExec,
    TaskExecFilter, WorkerStatus,
};

pub use crate::chart::LastHour;

/// What the overview shows.
#[derive(Debug, Clone)]
pub struct Overview {
    /// Executions per state and per queue and state.
    pub counts: ExecCounts,
    /// Every worker status (the page lists the online ones).
    pub workers: Vec<WorkerStatus>,
    /// Succeeded and failed per minute over the last hour.
    pub last_hour: LastHour,
    /// Queued executions of tasks no online worker links.
    pub unknown: Vec<TaskCount>,
}

/// The overview at `now`, counting each state exactly up to `exact_up_to` executions.
pub fn overview(store: &Store, now: DateTime<Utc>, exact_up_to: i64) -> Result<Overview> {
    Ok(Overview {
        counts: TaskExec::view_counts_in(store, exact_up_to)?,
        workers: WorkerStatus::list_in(store)?,
        last_hour: crate::chart::last_hour(store, now)?,
        unknown: TaskExec::unknown_to_online_workers_in(store, now)?,
    })
}

/// One page of the executions list: the page's filter, with `limit` one more than the page
/// size (the extra row says whether an older page exists) and `before_id` the last id of
/// the page before.
pub fn executions(store: &Store, filter: &TaskExecFilter) -> Result<Vec<TaskExec>> {
    TaskExec::list_in(store, filter)
}

/// What the workers page shows.
#[derive(Debug, Clone)]
pub struct Workers {
    /// Every worker status.
    pub workers: Vec<WorkerStatus>,
    /// Executions running now per worker label.
    pub running: Vec<(String, i64)>,
}

/// The workers page's data.
pub fn workers(store: &Store) -> Result<Workers> {
    Ok(Workers {
        workers: WorkerStatus::list_in(store)?,
        running: TaskExec::running_per_worker_in(store)?,
    })
}

/// What the schedules page shows besides the schedules compiled in.
#[derive(Debug, Clone)]
pub struct Schedules {
    /// Every schedule's row (compiled in or stored).
    pub rows: Vec<ScheduleExec>,
    /// The state of each schedule's last execution, by id (missing: deleted).
    pub last_states: HashMap<i64, State>,
    /// The schedules stored at run time.
    pub stored: Vec<StoredSchedule>,
}

/// The schedules page's data.
pub fn schedules(store: &Store) -> Result<Schedules> {
    let rows = ScheduleExec::list_in(store)?;
    let stored = store.list_schedules()?;
    let mut last_states: HashMap<i64, State> = HashMap::new();
    for id in rows.iter().filter_map(|r| r.last_task) {
        match TaskExec::get_in(store, id) {
            Ok(exec) => {
                last_states.insert(id, exec.state);
            }
            Err(toosimple_core::Error::ExecNotFound { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(Schedules {
        rows,
        last_states,
        stored,
    })
}
