//! `WorkerStatus`: what each worker reports about itself in `worker_statuses`.

use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::schema::worker_statuses::dsl as ws;
use crate::store::Store;

/// The exit code of a worker that stopped when asked to (first SIGINT, `--once`, `--until-done`).
pub const EXIT_STOPPED: i32 = 0;
/// The exit code of a worker terminated by SIGTERM or a second SIGINT.
pub const EXIT_TERMINATED: i32 = 77;
/// The exit code of a worker that hit an error it could not recover from.
pub const EXIT_CRASHED: i32 = 99;

/// A worker's state, derived from its status row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkerState {
    /// Running, with a recent heartbeat.
    Online,
    /// Running, with a recent heartbeat, and asked to stop ([`StopRequest`]) from elsewhere.
    Stopping,
    /// Stopped cleanly (exit code 0).
    Stopped,
    /// Stopped by SIGTERM or a second SIGINT (exit code 77); its running tasks were interrupted.
    Terminated,
    /// Stopped by an error (any other exit code).
    Crashed,
    /// Not stopped, but silent for longer than its heartbeat timeout: presumed dead. Its running tasks
    /// are rescued by the next live worker.
    TimedOut,
}

impl WorkerState {
    /// The name shown by the CLI (`"online"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            WorkerState::Online => "online",
            WorkerState::Stopping => "stopping",
            WorkerState::Stopped => "stopped",
            WorkerState::Terminated => "terminated",
            WorkerState::Crashed => "crashed",
            WorkerState::TimedOut => "timed_out",
        }
    }
}

impl WorkerState {
    /// Whether the worker runs: online, or stopping after a request.
    pub const fn is_running(self) -> bool {
        matches!(self, WorkerState::Online | WorkerState::Stopping)
    }
}

impl std::fmt::Display for WorkerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stop asked of a running worker from elsewhere (`app stop`, the admin's stop button): its
/// heartbeat reads it back within one tick, and it stops as if it had been sent the signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopRequest {
    /// Finish the running tasks, claim nothing more, exit 0 (as a first SIGINT).
    Graceful,
    /// Interrupt the running tasks, each with a replacement, and exit 77 (as SIGTERM).
    Terminate,
}

impl StopRequest {
    /// The name stored in `worker_statuses.stop_request` (`"graceful"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            StopRequest::Graceful => "graceful",
            StopRequest::Terminate => "terminate",
        }
    }

    /// The request stored as `text`; `None` for anything else (a newer version's word).
    pub fn parse(text: &str) -> Option<StopRequest> {
        match text {
            "graceful" => Some(StopRequest::Graceful),
            "terminate" => Some(StopRequest::Terminate),
            _ => None,
        }
    }
}

impl std::fmt::Display for StopRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One worker's status row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerStatus {
    /// The row's id.
    pub id: i64,
    /// The worker's label (unique).
    pub label: String,
    /// The queues it serves (empty: all but `excluded_queues`).
    pub queues: Vec<String>,
    /// The queues it leaves alone.
    pub excluded_queues: Vec<String>,
    /// Its heartbeat timeout: seconds without a heartbeat after which it counts as dead (the
    /// worker's `--timeout`; not a task's run limit, `#[task(timeout)]`). Stored in the
    /// `timeout` column.
    pub heartbeat_timeout: f64,
    /// Its last heartbeat.
    pub last_tick: DateTime<Utc>,
    /// When it started.
    pub started: DateTime<Utc>,
    /// When it stopped.
    pub stopped: Option<DateTime<Utc>>,
    /// Its exit code, once stopped.
    pub exit_code: Option<i32>,
    /// Why it stopped, for a crash.
    pub exit_log: Option<String>,
    /// The tasks it links, by name; `None` for a worker that did not say (an older version).
    pub tasks: Option<Vec<String>>,
    /// A stop asked of it from elsewhere and not yet reset by a restart under this label.
    pub stop_request: Option<StopRequest>,
    /// How many executions it ran since it started (as of its last heartbeat).
    pub handled: i64,
    /// Its heartbeat interval, seconds (the worker's `--tick`).
    pub tick: f64,
    /// The label of the `app cluster` that started it, if one did.
    pub cluster: Option<String>,
    /// How many times its cluster restarted it (after a death, or to recycle it).
    pub restarts: i32,
}

#[derive(Queryable)]
pub(crate) struct WorkerStatusRow {
    pub(crate) id: i64,
    pub(crate) label: String,
    queues: String,
    excluded_queues: String,
    timeout: f64,
    last_tick: NaiveDateTime,
    started: NaiveDateTime,
    pub(crate) stopped: Option<NaiveDateTime>,
    exit_code: Option<i32>,
    exit_log: Option<String>,
    tasks: Option<String>,
    stop_request: Option<String>,
    handled: i64,
    tick: f64,
    cluster: Option<String>,
    restarts: i32,
}

impl From<WorkerStatusRow> for WorkerStatus {
    fn from(row: WorkerStatusRow) -> Self {
        WorkerStatus {
            id: row.id,
            label: row.label,
            queues: serde_json::from_str(&row.queues).unwrap_or_default(),
            excluded_queues: serde_json::from_str(&row.excluded_queues).unwrap_or_default(),
            heartbeat_timeout: row.timeout,
            last_tick: row.last_tick.and_utc(),
            started: row.started.and_utc(),
            stopped: row.stopped.map(|t| t.and_utc()),
            exit_code: row.exit_code,
            exit_log: row.exit_log,
            tasks: row.tasks.and_then(|t| serde_json::from_str(&t).ok()),
            stop_request: row.stop_request.as_deref().and_then(StopRequest::parse),
            handled: row.handled,
            tick: row.tick,
            cluster: row.cluster,
            restarts: row.restarts,
        }
    }
}

impl WorkerStatus {
    /// Its state at `now`: from the exit code once stopped, else from the heartbeat's age.
    pub fn state_at(&self, now: DateTime<Utc>) -> WorkerState {
        match (self.stopped, self.exit_code) {
            (Some(_), Some(EXIT_STOPPED)) => WorkerState::Stopped,
            (Some(_), Some(EXIT_TERMINATED)) => WorkerState::Terminated,
            (Some(_), _) => WorkerState::Crashed,
            (None, _) if self.is_silent_at(now) => WorkerState::TimedOut,
            (None, _) if self.stop_request.is_some() => WorkerState::Stopping,
            (None, _) => WorkerState::Online,
        }
    }

    /// Its state now.
    pub fn state(&self) -> WorkerState {
        self.state_at(Utc::now())
    }

    /// Whether its last heartbeat is older than its heartbeat timeout at `now`.
    pub fn is_silent_at(&self, now: DateTime<Utc>) -> bool {
        // A timeout whose deadline chrono cannot hold (`--timeout 1e19`) is never reached:
        // every other worker reads this row when it rescues, and must not panic on it.
        TimeDelta::try_milliseconds((self.heartbeat_timeout * 1000.0) as i64)
            .and_then(|timeout| self.last_tick.checked_add_signed(timeout))
            .is_some_and(|deadline| deadline < now)
    }

    /// Every worker status of `store`, by label.
    pub fn list_in(store: &Store) -> Result<Vec<WorkerStatus>> {
        let rows = store.autocommit(
            || "listing worker statuses".to_string(),
            |c| {
                ws::worker_statuses
                    .order(ws::label)
                    .load::<WorkerStatusRow>(c)
            },
        )?;
        Ok(rows.into_iter().map(WorkerStatus::from).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(heartbeat_timeout: f64, last_tick: DateTime<Utc>) -> WorkerStatus {
        WorkerStatus {
            id: 1,
            label: "w".into(),
            queues: vec![],
            excluded_queues: vec![],
            heartbeat_timeout,
            last_tick,
            started: last_tick,
            stopped: None,
            exit_code: None,
            exit_log: None,
            tasks: None,
            stop_request: None,
            handled: 0,
            tick: 1.0,
            cluster: None,
            restarts: 0,
        }
    }

    /// Finding: `worker --timeout 1e19` is accepted, and adding that timeout to the last
    /// heartbeat overflowed chrono, panicking every worker's rescue pass, `status` and the
    /// admin's workers page as soon as they read that worker's row.
    #[test]
    fn a_heartbeat_timeout_past_chronos_range_is_never_reached_instead_of_a_panic() {
        let now = Utc::now();
        for timeout in [1e19, 1e13, f64::MAX] {
            let worker = status(timeout, now);
            assert!(!worker.is_silent_at(DateTime::<Utc>::MAX_UTC), "{timeout}");
            assert_eq!(worker.state_at(now), WorkerState::Online);
        }
        let silent = status(300.0, now - TimeDelta::seconds(301));
        assert_eq!(silent.state_at(now), WorkerState::TimedOut);
        assert_eq!(status(300.0, now).state_at(now), WorkerState::Online);
    }
}
