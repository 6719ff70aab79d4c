//! Materializing schedules: turning due occurrences into executions, exactly once.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde_json::Value;

use super::driver::driver;
use super::enqueue::EnqueueConnection;
use super::{AnyConnection, Store};
use crate::cron::MAX_OCCURRENCES_PER_PASS;
use crate::error::{Error, Result};
use crate::schedule::ScheduleDef;
use crate::schedule_exec::{ScheduleExecRow, ScheduleState};
use crate::schema::schedule_execs::dsl as se;
use crate::{TaskHandle, find_task};

/// What one [`Store::materialize_schedules`] pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MaterializeReport {
    /// Schedules seen for the first time (rows created).
    pub created: Vec<String>,
    /// `(schedule, execution id, occurrence)` for each occurrence enqueued.
    pub enqueued: Vec<(String, i64, DateTime<Utc>)>,
    /// Schedule rows newly marked invalid (no registered schedule has their name).
    pub invalidated: usize,
    /// `(schedule, reason)` for schedules that could not be materialized.
    pub failed: Vec<(String, String)>,
}

/// The arguments of one occurrence: the schedule's own, with the occurrence (or `null` for a
/// run on demand) in its `datetime_arg` parameter.
fn occurrence_args(def: &ScheduleDef, due: Option<DateTime<Utc>>) -> Result<Value> {
    let mut args = def.args()?;
    if let (Some(param), Value::Object(map)) = (def.datetime_arg(), &mut args) {
        map.insert(
            param.to_string(),
            due.map_or(Value::Null, |d| {
                Value::String(d.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
            }),
        );
    }
    Ok(args)
}

/// The column values of a new `schedule_execs` row.
pub(super) type NewScheduleRow<'a> = (
    diesel::dsl::Eq<se::name, &'a str>,
    diesel::dsl::Eq<se::last_due, Option<chrono::NaiveDateTime>>,
    diesel::dsl::Eq<se::state, &'static str>,
);

/// The values of a new schedule row, for the drivers' `create_schedule`.
pub(super) fn new_schedule_row(
    name: &str,
    last_due: Option<chrono::NaiveDateTime>,
) -> NewScheduleRow<'_> {
    (
        se::name.eq(name),
        se::last_due.eq(last_due),
        se::state.eq(ScheduleState::Active.as_str()),
    )
}

impl Store {
    /// One pass over `schedules` (those this worker materializes), in one transaction: creates
    /// the rows of schedules seen for the first time, enqueues each due occurrence (every
    /// missed one with `catch_up`, else the latest), advances `last_due`, and marks invalid the
    /// rows of names not in `registered`.
    ///
    /// Exactly once: rows are locked while a pass works on them, the occurrence and the new
    /// `last_due` commit together, and a unique index on (schedule, due) refuses a second
    /// execution of one occurrence.
    pub fn materialize_schedules(
        &self,
        schedules: &[&ScheduleDef],
        registered: &[&str],
        now: DateTime<Utc>,
    ) -> Result<MaterializeReport> {
        self.write(
            || "materializing schedules".to_string(),
            |c| {
                let mut report = MaterializeReport::default();
                let names: Vec<&str> = schedules.iter().map(|s| s.name()).collect();
                let mut rows = driver(c).lock_schedules(&names)?;
                for def in schedules {
                    if rows.iter().any(|r| r.name == def.name()) {
                        continue;
                    }
                    let last_due = (!def.run_on_creation()).then(|| now.naive_utc());
                    if let Some(row) = driver(c).create_schedule(def.name(), last_due)? {
                        report.created.push(def.name().to_string());
                        rows.push(row);
                    }
                }
                for row in &rows {
                    let Some(def) = schedules.iter().find(|s| s.name() == row.name) else {
                        continue;
                    };
                    match materialize_one(c, def, row, now, self)? {
                        Ok(enqueued) => report.enqueued.extend(enqueued),
                        Err(reason) => report.failed.push((row.name.clone(), reason)),
                    }
                }
                // Rows of schedules stored at run time are theirs, not stale.
                let stored: Vec<String> = crate::schema::stored_schedules::table
                    .select(crate::schema::stored_schedules::name)
                    .load(c)?;
                report.invalidated = diesel::update(
                    se::schedule_execs
                        .filter(se::name.ne_all(registered))
                        .filter(se::name.ne_all(&stored))
                        .filter(se::state.ne(ScheduleState::Invalid.as_str())),
                )
                .set(se::state.eq(ScheduleState::Invalid.as_str()))
                .execute(c)?;
                Ok(report)
            },
        )
    }

    /// Enqueues schedule `name`'s task now, outside its cron (the seed's "force run"): its
    /// `datetime_arg`, if any, is `None`.
    pub fn run_schedule(&self, name: &str) -> Result<TaskHandle<Value>> {
        let all = crate::schedule::schedules();
        let def = all
            .iter()
            .find(|s| s.name() == name)
            .ok_or_else(|| Error::UnknownSchedule {
                name: name.to_string(),
                known: all.iter().map(|s| s.name().to_string()).collect(),
            })?;
        let task = find_task(def.task())?;
        let args = occurrence_args(def, None)?;
        let mut row = crate::enqueue::new_row(task, &args, None);
        if let Some(hook) = def.hook() {
            row.hook = Some(hook.name().to_string());
        }
        self.seal(std::slice::from_mut(&mut row));
        let enqueued = self.write(
            || format!("running schedule `{name}`"),
            |c| {
                let enqueued = c.__enqueue(std::slice::from_ref(&row))?;
                // A schedule run before any worker saw it gets its row now, as a worker would
                // create it.
                let last_due = (!def.run_on_creation()).then(|| Utc::now().naive_utc());
                driver(c).create_schedule(name, last_due)?;
                diesel::update(se::schedule_execs.filter(se::name.eq(name)))
                    .set(se::last_task.eq(enqueued[0].id))
                    .execute(c)?;
                Ok(enqueued)
            },
        )?;
        Ok(TaskHandle::enqueued(
            Some(self.clone()),
            enqueued[0].id,
            enqueued[0].duplicate,
        ))
    }
}

type Enqueued = Vec<(String, i64, DateTime<Utc>)>;

/// Enqueues the due occurrences of one locked schedule row. The outer `Err` is a database
/// error (the pass rolls back); the inner one a schedule that cannot run (reported, skipped).
fn materialize_one(
    c: &mut AnyConnection,
    def: &ScheduleDef,
    row: &ScheduleExecRow,
    now: DateTime<Utc>,
    store: &Store,
) -> QueryResult<std::result::Result<Enqueued, String>> {
    let schedule = match def.schedule() {
        Ok(schedule) => schedule,
        Err(e) => return Ok(Err(e.to_string())),
    };
    let task = match find_task(def.task()) {
        Ok(task) => task,
        Err(e) => return Ok(Err(e.to_string())),
    };
    let dues: Vec<DateTime<Utc>> = match row.last_due.map(|t| t.and_utc()) {
        None => schedule.latest_at_or_before(now).into_iter().collect(),
        Some(last) if def.catch_up() => schedule.occurrences(last, now, MAX_OCCURRENCES_PER_PASS),
        Some(last) => schedule
            .latest_at_or_before(now)
            .filter(|latest| *latest > last)
            .into_iter()
            .collect(),
    };
    let mut rows = Vec::with_capacity(dues.len());
    for due in &dues {
        let args = match occurrence_args(def, Some(*due)) {
            Ok(args) => args,
            Err(e) => return Ok(Err(e.to_string())),
        };
        let mut new = crate::enqueue::new_row(task, &args, Some(*due));
        new.schedule = Some(def.name().to_string());
        if let Some(hook) = def.hook() {
            new.hook = Some(hook.name().to_string());
        }
        rows.push(new);
    }
    store.seal(&mut rows);
    let enqueued = c.__enqueue(&rows)?;
    let last_due = dues
        .last()
        .copied()
        .or_else(|| row.last_due.map(|t| t.and_utc()))
        .unwrap_or(now);
    diesel::update(se::schedule_execs.find(row.id))
        .set((
            se::last_due.eq(Some(last_due.naive_utc())),
            se::last_task.eq(enqueued.last().map(|e| e.id).or(row.last_task)),
            se::state.eq(ScheduleState::Active.as_str()),
        ))
        .execute(c)?;
    Ok(Ok(dues
        .iter()
        .zip(&enqueued)
        .map(|(due, e)| (def.name().to_string(), e.id, *due))
        .collect()))
}
