//! The `worker_statuses` rows: a worker announces itself, beats, and says how it stopped.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::Store;
use crate::error::Result;
use crate::schema::worker_statuses::dsl as ws;

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
    /// Its start time.
    pub now: DateTime<Utc>,
    /// The tasks it links, by name: what it can run.
    pub tasks: &'a [&'a str],
}

impl Store {
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

    /// Records a heartbeat of `label`.
    pub fn heartbeat(&self, label: &str, now: DateTime<Utc>) -> Result<()> {
        self.autocommit(
            || format!("recording the heartbeat of worker {label}"),
            |c| {
                diesel::update(ws::worker_statuses.filter(ws::label.eq(label)))
                    .set(ws::last_tick.eq(now.naive_utc()))
                    .execute(c)
            },
        )?;
        Ok(())
    }

    /// Records that `label` stopped, with its exit code and, for a crash, why. A worker that
    /// crashed before registering gets a row too, so that the reason is visible.
    pub fn stop_worker(
        &self,
        label: &str,
        now: DateTime<Utc>,
        exit_code: i32,
        exit_log: Option<&str>,
    ) -> Result<()> {
        let now = now.naive_utc();
        self.write(
            || format!("recording the stop of worker {label}"),
            |c| {
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
