//! Schedules created at run time: storing, listing, pausing and removing them, and
//! materializing their occurrences exactly once (the same locks and unique index as the
//! compiled schedules of `schedules.rs`).

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::claim::QueueSelection;
use super::driver::driver;
use super::enqueue::EnqueueConnection;
use super::schedules::MaterializeReport;
use super::{AnyConnection, Store};
use crate::error::{Error, Result};
use crate::schedule_exec::ScheduleState;
use crate::schema::schedule_execs::dsl as se;
use crate::schema::stored_schedules::dsl as ss;
use crate::schema::task_execs::dsl as te;
use crate::stored_schedule::{Every, NewSchedule, StoredSchedule, StoredScheduleRow};

fn unknown(name: &str) -> Error {
    Error::InvalidStoredSchedule {
        name: name.to_string(),
        reason: "no stored schedule has this name: `app schedule list` lists them".to_string(),
    }
}

fn load(c: &mut AnyConnection, name: &str) -> QueryResult<Option<StoredScheduleRow>> {
    Ok(ss::stored_schedules
        .filter(ss::name.eq(name))
        .select(StoredScheduleRow::as_select())
        .load(c)?
        .into_iter()
        .next())
}

impl Store {
    /// Stores `schedule` after checking it (its task is registered here and its arguments
    /// fit the task, its cron expression or step is valid, its name is free): a bad one is
    /// refused with what to write, and nothing is stored.
    pub fn add_schedule(&self, schedule: &NewSchedule) -> Result<StoredSchedule> {
        schedule.validate()?;
        let now = crate::enqueue::now().naive_utc();
        let (cron, tz, seconds, months, month_end) = match schedule.every.clone() {
            Some(Every::Cron { expr, tz }) => (Some(expr), tz, None, None, false),
            Some(Every::Seconds(s)) => {
                (None, "UTC".to_string(), i64::try_from(s).ok(), None, false)
            }
            Some(Every::Months(n)) => (None, "UTC".to_string(), None, i32::try_from(n).ok(), false),
            Some(Every::MonthEnd) | None => (None, "UTC".to_string(), None, None, true),
        };
        let name = schedule.name.clone();
        let row = self.write(
            || format!("storing schedule `{name}`"),
            |c| {
                if load(c, &schedule.name)?.is_some() {
                    return Ok(None);
                }
                diesel::insert_into(ss::stored_schedules)
                    .values((
                        ss::name.eq(&schedule.name),
                        ss::task_name.eq(&schedule.task),
                        ss::args.eq(schedule.args.to_string()),
                        ss::cron.eq(cron),
                        ss::tz.eq(tz),
                        ss::interval_seconds.eq(seconds),
                        ss::interval_months.eq(months),
                        ss::month_end.eq(month_end),
                        ss::start.eq(schedule.start.map_or(now, |t| t.naive_utc())),
                        ss::repeats_left.eq(schedule.repeat),
                        ss::ends.eq(schedule.ends.map(|t| t.naive_utc())),
                        ss::between_start.eq(schedule.between.map(|w| i32::from(w.start))),
                        ss::between_end.eq(schedule.between.map(|w| i32::from(w.end))),
                        ss::weekdays.eq(schedule.weekdays.map(|d| i32::from(d.0))),
                        ss::queue.eq(&schedule.queue),
                        ss::paused.eq(false),
                        ss::created.eq(now),
                        ss::hook.eq(&schedule.hook),
                    ))
                    .execute(c)?;
                // Its occurrences start from its own start, not from an earlier schedule's.
                diesel::delete(se::schedule_execs.filter(se::name.eq(&schedule.name)))
                    .execute(c)?;
                load(c, &schedule.name)
            },
        )?;
        match row {
            Some(row) => row.into_schedule(),
            None => Err(Error::InvalidStoredSchedule {
                name,
                reason: "a stored schedule has this name already: remove it first, or choose another name"
                    .to_string(),
            }),
        }
    }

    /// Every stored schedule, by name.
    pub fn list_schedules(&self) -> Result<Vec<StoredSchedule>> {
        let rows = self.autocommit(
            || "listing stored schedules".to_string(),
            |c| {
                ss::stored_schedules
                    .order(ss::name)
                    .select(StoredScheduleRow::as_select())
                    .load(c)
            },
        )?;
        rows.into_iter()
            .map(StoredScheduleRow::into_schedule)
            .collect()
    }

    /// Pauses (`true`) or resumes (`false`) stored schedule `name`. Resumed, it enqueues its
    /// latest occurrence, not the ones it missed while paused.
    pub fn pause_schedule(&self, name: &str, paused: bool) -> Result<StoredSchedule> {
        let row = self.write(
            || format!("pausing schedule `{name}`"),
            |c| {
                diesel::update(ss::stored_schedules.filter(ss::name.eq(name)))
                    .set(ss::paused.eq(paused))
                    .execute(c)?;
                if !paused {
                    // What fell due while paused is not caught up.
                    let now = crate::enqueue::now().naive_utc();
                    if load(c, name)?.is_some() {
                        driver(c).create_schedule(name, Some(now))?;
                    }
                    diesel::update(se::schedule_execs.filter(se::name.eq(name)))
                        .set(se::last_due.eq(Some(now)))
                        .execute(c)?;
                }
                load(c, name)
            },
        )?;
        row.ok_or_else(|| unknown(name))?.into_schedule()
    }

    /// Removes stored schedule `name`; its executions stay.
    pub fn remove_schedule(&self, name: &str) -> Result<()> {
        let removed = self.write(
            || format!("removing schedule `{name}`"),
            |c| {
                let n =
                    diesel::delete(ss::stored_schedules.filter(ss::name.eq(name))).execute(c)?;
                diesel::delete(se::schedule_execs.filter(se::name.eq(name))).execute(c)?;
                Ok(n)
            },
        )?;
        if removed == 0 {
            return Err(unknown(name));
        }
        Ok(())
    }

    /// The latest finished run of schedule `name` (stored or `#[schedule]`): of its newest
    /// occurrences, the first whose execution, followed through its retries, has ended. It is
    /// the last execution of that chain, in any end state (`None` before any has ended).
    ///
    /// ```no_run
    /// let store = toosimple_core::default_store()?;
    /// if let Some(run) = store.latest_schedule_run("nightly-report")? {
    ///     println!("{} at {:?}: {:?}", run.state, run.finished, run.result);
    /// }
    /// # Ok::<(), toosimple_core::Error>(())
    /// ```
    pub fn latest_schedule_run(&self, name: &str) -> Result<Option<crate::TaskExec>> {
        // Occurrences newer than the last finished run are still queued or running: a few
        // are looked at, newest first, through the (schedule, due) index.
        const OCCURRENCES: i64 = 8;
        // A retry chain is as long as the task's retries; past this it is read no further.
        const CHAIN: usize = 1_000;
        let row = self.autocommit(
            || format!("reading the latest run of schedule `{name}`"),
            |c| {
                let firsts: Vec<i64> = te::task_execs
                    .filter(te::schedule.eq(name))
                    .order(te::due.desc())
                    .select(te::id)
                    .limit(OCCURRENCES)
                    .load(c)?;
                for first in firsts {
                    let mut id = first;
                    for _ in 0..CHAIN {
                        let Some(row) = crate::exec::find_row(c, id)? else {
                            break;
                        };
                        match row.replaced_by {
                            Some(next) => id = next,
                            None if row.finished.is_some() => return Ok(Some(row)),
                            None => break,
                        }
                    }
                }
                Ok(None)
            },
        )?;
        row.map(crate::TaskExec::try_from).transpose()
    }

    /// The result of schedule `name`'s latest finished run when that run succeeded (django-q's
    /// `Schedule.result()`): `None` when none has ended yet or the latest failed (then
    /// [`latest_schedule_run`](Self::latest_schedule_run) tells why).
    pub fn schedule_result(&self, name: &str) -> Result<Option<serde_json::Value>> {
        Ok(self
            .latest_schedule_run(name)?
            .filter(|run| run.state == crate::State::Succeeded)
            .and_then(|run| run.result))
    }

    /// One pass over the stored schedules of `queues` (those whose queue, or whose task's
    /// queue, is served) that are not paused: enqueues each one's latest due occurrence not
    /// enqueued yet, exactly once across workers. Reads first, and takes the write lock only
    /// when a stored schedule exists.
    pub fn materialize_stored_schedules(
        &self,
        queues: &QueueSelection,
        now: DateTime<Utc>,
    ) -> Result<MaterializeReport> {
        let active: Vec<StoredScheduleRow> = self.autocommit(
            || "reading stored schedules".to_string(),
            |c| {
                ss::stored_schedules
                    .filter(ss::paused.eq(false))
                    .select(StoredScheduleRow::as_select())
                    .load(c)
            },
        )?;
        let mut report = MaterializeReport::default();
        let mut ours = Vec::new();
        for row in active {
            let name = row.name.clone();
            let schedule = match row.into_schedule() {
                Ok(schedule) => schedule,
                Err(e) => {
                    report.failed.push((name, e.to_string()));
                    continue;
                }
            };
            let task = match crate::find_task(&schedule.task) {
                Ok(task) => task,
                Err(e) => {
                    report.failed.push((name, e.to_string()));
                    continue;
                }
            };
            let queue = schedule.queue.as_deref().unwrap_or(task.queue());
            if queues.includes(queue) {
                ours.push((schedule, task));
            }
        }
        if ours.is_empty() {
            return Ok(report);
        }
        self.write(
            || "materializing stored schedules".to_string(),
            |c| {
                let names: Vec<&str> = ours.iter().map(|(s, _)| s.name.as_str()).collect();
                let mut rows = driver(c).lock_schedules(&names)?;
                for (schedule, _) in &ours {
                    if !rows.iter().any(|r| r.name == schedule.name)
                        && let Some(row) = driver(c).create_schedule(&schedule.name, None)?
                    {
                        report.created.push(schedule.name.clone());
                        rows.push(row);
                    }
                }
                for row in &rows {
                    let Some((schedule, task)) = ours.iter().find(|(s, _)| s.name == row.name)
                    else {
                        continue;
                    };
                    // Re-read under the lock: another worker may have used a repeat.
                    let Some(fresh) = load(c, &schedule.name)? else {
                        continue;
                    };
                    if fresh.repeats_left == Some(0) || fresh.paused {
                        continue;
                    }
                    let due = match schedule.latest_due(row.last_due.map(|t| t.and_utc()), now) {
                        Ok(Some(due)) => due,
                        Ok(None) => continue,
                        Err(e) => {
                            report.failed.push((schedule.name.clone(), e.to_string()));
                            continue;
                        }
                    };
                    let mut new = crate::enqueue::new_row(task, &schedule.args, Some(due));
                    if let Some(queue) = &schedule.queue {
                        new.queue = queue.clone();
                    }
                    if let Some(hook) = &schedule.hook {
                        new.hook = Some(hook.clone());
                    }
                    new.schedule = Some(schedule.name.clone());
                    self.seal(std::slice::from_mut(&mut new));
                    let enqueued = c.__enqueue(std::slice::from_ref(&new))?;
                    diesel::update(se::schedule_execs.find(row.id))
                        .set((
                            se::last_due.eq(Some(due.naive_utc())),
                            se::last_task.eq(enqueued.first().map(|e| e.id)),
                            se::state.eq(ScheduleState::Active.as_str()),
                        ))
                        .execute(c)?;
                    if let Some(left) = fresh.repeats_left {
                        diesel::update(ss::stored_schedules.filter(ss::name.eq(&schedule.name)))
                            .set(ss::repeats_left.eq(left - 1))
                            .execute(c)?;
                    }
                    if let Some(e) = enqueued.first() {
                        report.enqueued.push((schedule.name.clone(), e.id, due));
                    }
                }
                Ok(())
            },
        )?;
        Ok(report)
    }
}
