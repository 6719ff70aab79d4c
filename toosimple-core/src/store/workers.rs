//! The `worker_statuses` rows: a worker announces itself, beats, and says how it stopped.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::Store;
use super::driver::driver;
use crate::State;
use crate::context::Progress;
use crate::error::{Error, Result};
use crate::schema::task_execs::dsl as te;
use crate::schema::worker_statuses::dsl as ws;
use crate::worker_status::{StopRequest, WorkerStatus, WorkerStatusRow};

/// What a starting worker records about itself.
#[derive(Debug, Clone)]
pub struct WorkerRegistration<'a> {
    /// Its label, unique among workers.
    pub label: &'a str,
    /// The queues it serves (empty: all but `excluded_queues`).
    pub queues: &'a [String],
    /// The queues it leaves alone.
    pub excluded_queues: &'a [String],
    /// Its heartbeat timeout: seconds without a heartbeat after which it counts as dead (the
    /// `--timeout` flag; not a task's run limit, `#[task(timeout)]`).
    pub heartbeat_timeout: f64,
    /// Its heartbeat interval, seconds (the `--tick` flag): how long `app ping` waits for a beat.
    pub tick: f64,
    /// The `app cluster` that started it, and how many times it restarted it.
    pub cluster: Option<(&'a str, i32)>,
    /// Its start time.
    pub now: DateTime<Utc>,
    /// The tasks it links, by name: what it can run.
    pub tasks: &'a [&'a str],
}

impl Store {
    /// What a worker's heartbeat does while `worker` runs executions: writes the latest
    /// `progress` of those that reported some (on the rows it still holds), and returns the
    /// ids among `running` that have a cancel request ([`TaskExec::cancel_in`]).
    ///
    /// [`TaskExec::cancel_in`]: crate::TaskExec::cancel_in
    pub fn sync_running(
        &self,
        worker: &str,
        progress: &[(i64, Progress)],
        running: &[i64],
    ) -> Result<Vec<i64>> {
        if !progress.is_empty() {
            self.write(
                || format!("writing the progress of {} executions", progress.len()),
                |c| {
                    for (id, report) in progress {
                        // PostgreSQL refuses a NUL in text: written `\0`, as Rust shows it.
                        let message = report.message.as_ref().map(|m| m.replace('\0', "\\0"));
                        diesel::update(
                            te::task_execs
                                .find(id)
                                .filter(te::state.eq(State::Processing.as_str()))
                                .filter(te::worker.eq(worker)),
                        )
                        .set((
                            te::progress.eq(Some(report.fraction)),
                            te::progress_message.eq(message),
                        ))
                        .execute(c)?;
                    }
                    Ok(())
                },
            )?;
        }
        if running.is_empty() {
            return Ok(Vec::new());
        }
        self.autocommit(
            || format!("reading the cancel requests of worker {worker}"),
            |c| {
                te::task_execs
                    .filter(te::id.eq_any(running))
                    .filter(te::state.eq(State::Processing.as_str()))
                    .filter(te::cancel_requested.is_not_null())
                    .select(te::id)
                    .load::<i64>(c)
            },
        )
    }

    /// Creates or resets the status row of `registration.label`, and interrupts (with
    /// replacements) any execution still `Processing` under that label: it was left by an
    /// earlier worker with the same label that died, since labels are unique among live
    /// workers. Returns those `(interrupted, replacement)` pairs.
    pub fn register_worker(
        &self,
        registration: &WorkerRegistration<'_>,
    ) -> Result<Vec<(i64, i64)>> {
        let queues = serde_json::to_string(registration.queues).unwrap_or_else(|_| "[]".into());
        let excluded =
            serde_json::to_string(registration.excluded_queues).unwrap_or_else(|_| "[]".into());
        let tasks = serde_json::to_string(registration.tasks).unwrap_or_else(|_| "[]".into());
        let now = registration.now.naive_utc();
        let label = registration.label;
        self.write(
            || format!("registering worker {label}"),
            |c| {
                let values = (
                    ws::queues.eq(&queues),
                    ws::excluded_queues.eq(&excluded),
                    ws::timeout.eq(registration.heartbeat_timeout),
                    ws::last_tick.eq(now),
                    ws::started.eq(now),
                    ws::stopped.eq(None::<chrono::NaiveDateTime>),
                    ws::exit_code.eq(None::<i32>),
                    ws::exit_log.eq(None::<String>),
                    ws::tasks.eq(Some(&tasks)),
                    // A stop asked of an earlier worker with this label is not for this one.
                    ws::stop_request.eq(None::<String>),
                    ws::handled.eq(0),
                    ws::tick.eq(registration.tick),
                    ws::cluster.eq(registration.cluster.map(|(name, _)| name)),
                    ws::restarts.eq(registration.cluster.map_or(0, |(_, n)| n)),
                );
                let updated = diesel::update(ws::worker_statuses.filter(ws::label.eq(label)))
                    .set(values.clone())
                    .execute(c)?;
                if updated == 0 {
                    diesel::insert_into(ws::worker_statuses)
                        .values((ws::label.eq(label), values))
                        .execute(c)?;
                }
                Ok(())
            },
        )?;
        self.interrupt_all_of(
            label,
            &format!("worker {label} restarted while running it"),
            registration.now,
        )
    }

    /// Records a heartbeat of `label`, with the number of executions it `handled` since it
    /// started, and returns the stop asked of it, if any ([`Store::request_stop`]): one
    /// statement, so that a worker sees a request within one heartbeat.
    pub fn heartbeat(
        &self,
        label: &str,
        now: DateTime<Utc>,
        handled: u64,
    ) -> Result<Option<StopRequest>> {
        let handled = i64::try_from(handled).unwrap_or(i64::MAX);
        let requests: Vec<Option<String>> = self.autocommit(
            || format!("recording the heartbeat of worker {label}"),
            |c| driver(c).beat(label, now.naive_utc(), handled),
        )?;
        Ok(requests
            .into_iter()
            .next()
            .flatten()
            .as_deref()
            .and_then(StopRequest::parse))
    }

    /// The status row of worker `label`, if one was ever recorded.
    pub fn worker_status(&self, label: &str) -> Result<Option<WorkerStatus>> {
        let rows: Vec<WorkerStatusRow> = self.autocommit(
            || format!("reading the status of worker {label}"),
            |c| {
                ws::worker_statuses
                    .filter(ws::label.eq(label))
                    .load::<WorkerStatusRow>(c)
            },
        )?;
        Ok(rows.into_iter().next().map(WorkerStatus::from))
    }

    /// Asks the workers labelled `labels` (every worker not stopped, for `None`) to stop: each
    /// reads the request at its next heartbeat and stops as after a first SIGINT
    /// ([`StopRequest::Graceful`]) or SIGTERM ([`StopRequest::Terminate`]). Requests only
    /// escalate: a graceful request does not soften a termination already asked for.
    ///
    /// Returns the status rows the request was written on. A label no worker ever had is
    /// [`Error::UnknownWorker`]; a worker that already stopped is returned as it is, untouched
    /// (its `stopped` says so).
    pub fn request_stop(
        &self,
        labels: Option<&[String]>,
        request: StopRequest,
    ) -> Result<Vec<WorkerStatus>> {
        let asked = request.as_str();
        // The outer result is the database's; the inner one names a label no worker had, in
        // which case nothing is written.
        let written = self.write(
            || format!("asking workers to stop ({asked})"),
            |c| {
                let mut target = ws::worker_statuses.into_boxed();
                if let Some(labels) = labels {
                    target = target.filter(ws::label.eq_any(labels));
                }
                let found: Vec<WorkerStatusRow> = target.load(c)?;
                if let Some(missing) = labels.and_then(|labels| {
                    labels
                        .iter()
                        .find(|label| !found.iter().any(|row| &row.label == *label))
                }) {
                    return Ok(Err(missing.clone()));
                }
                let live: Vec<i64> = found
                    .iter()
                    .filter(|row| row.stopped.is_none())
                    .map(|row| row.id)
                    .collect();
                let mut update =
                    diesel::update(ws::worker_statuses.filter(ws::id.eq_any(&live))).into_boxed();
                if request == StopRequest::Graceful {
                    update = update.filter(ws::stop_request.is_null());
                }
                update.set(ws::stop_request.eq(asked)).execute(c)?;
                ws::worker_statuses
                    .filter(ws::id.eq_any(found.iter().map(|row| row.id)))
                    .order(ws::label)
                    .load::<WorkerStatusRow>(c)
                    .map(Ok)
            },
        )?;
        let rows = match written {
            Ok(rows) => rows,
            Err(label) => {
                let known = WorkerStatus::list_in(self)?
                    .into_iter()
                    .filter(|w| w.stopped.is_none())
                    .map(|w| w.label)
                    .collect();
                return Err(Error::UnknownWorker { label, known });
            }
        };
        Ok(rows.into_iter().map(WorkerStatus::from).collect())
    }

    /// Records that `label` stopped, with its exit code, for a crash why, and the final count
    /// of executions it `handled` when known. A worker that crashed before registering gets a
    /// row too, so that the reason is visible.
    pub fn stop_worker(
        &self,
        label: &str,
        now: DateTime<Utc>,
        exit_code: i32,
        exit_log: Option<&str>,
        handled: Option<u64>,
    ) -> Result<()> {
        let now = now.naive_utc();
        self.write(
            || format!("recording the stop of worker {label}"),
            |c| {
                if let Some(handled) = handled {
                    diesel::update(ws::worker_statuses.filter(ws::label.eq(label)))
                        .set(ws::handled.eq(i64::try_from(handled).unwrap_or(i64::MAX)))
                        .execute(c)?;
                }
                let values = (
                    ws::last_tick.eq(now),
                    ws::stopped.eq(now),
                    ws::exit_code.eq(exit_code),
                    ws::exit_log.eq(exit_log),
                );
                let updated = diesel::update(ws::worker_statuses.filter(ws::label.eq(label)))
                    .set(values)
                    .execute(c)?;
                if updated == 0 {
                    diesel::insert_into(ws::worker_statuses)
                        .values((
                            ws::label.eq(label),
                            ws::queues.eq("[]"),
                            ws::excluded_queues.eq("[]"),
                            ws::timeout.eq(0.0),
                            ws::started.eq(now),
                            values,
                        ))
                        .execute(c)?;
                }
                Ok(())
            },
        )?;
        Ok(())
    }
}
