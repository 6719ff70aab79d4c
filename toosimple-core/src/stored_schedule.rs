//! Schedules created at run time (django-q's Schedule model, django-pq's `schedule_call`),
//! stored in `stored_schedules` beside the `#[schedule]`s compiled in: a cron expression, or a
//! step from a start (seconds, or calendar months, or the last day of each month), with
//! django-pq's options: a number of repeats or an end, a daily time window, week days.
//!
//! Their occurrences are materialized exactly once as the compiled ones are, through their
//! `schedule_execs` row and the unique (schedule, due) index of `task_execs`.
//!
//! ```
//! use toosimple_core::{NewSchedule, Every};
//! let nightly = NewSchedule::new("nightly-report", "render_report", serde_json::json!({"pages": 3}))
//!     .every(Every::Seconds(86_400))
//!     .between("02:00/04:30".parse().unwrap())
//!     .weekdays("mon,tue,wed,thu,fri".parse().unwrap())
//!     .repeat(30);
//! assert_eq!(nightly.name(), "nightly-report");
//! ```

use chrono::{DateTime, Datelike, Months, NaiveDateTime, TimeDelta, Timelike, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::cron::CronSchedule;
use crate::error::{Error, Result};

/// How far a search for an occurrence walks before it gives up: a window or week days that
/// few steps fall into (a 1-second step inside a 1-minute window) still finds one.
const SEARCH_STEPS: usize = 100_000;

/// When a stored schedule's occurrences fall.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Every {
    /// A cron expression (five fields, or six with seconds last), read in `tz`.
    Cron {
        /// The expression.
        expr: String,
        /// An IANA time zone.
        tz: String,
    },
    /// A step of this many seconds from the start.
    Seconds(u64),
    /// A step of this many calendar months from the start, on its day of the month (the
    /// month's last day when the month is shorter).
    Months(u32),
    /// The last day of each month, at the start's time of day.
    MonthEnd,
}

impl std::fmt::Display for Every {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Every::Cron { expr, tz } if tz == "UTC" => write!(f, "cron {expr}"),
            Every::Cron { expr, tz } => write!(f, "cron {expr} ({tz})"),
            Every::Seconds(s) => write!(f, "every {s} s"),
            Every::Months(1) => f.write_str("monthly"),
            Every::Months(n) => write!(f, "every {n} months"),
            Every::MonthEnd => f.write_str("last day of each month"),
        }
    }
}

/// A daily time window, UTC, `HH:MM/HH:MM` (django-pq's `between`); the end is excluded, and
/// a start after the end wraps midnight (`22:00/06:00`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    /// Minutes after midnight.
    pub start: u16,
    /// Minutes after midnight.
    pub end: u16,
}

impl Window {
    fn contains(self, at: DateTime<Utc>) -> bool {
        let minute = (at.hour() * 60 + at.minute()) as u16;
        if self.start <= self.end {
            (self.start..self.end).contains(&minute)
        } else {
            minute >= self.start || minute < self.end
        }
    }
}

impl std::str::FromStr for Window {
    type Err = String;

    fn from_str(text: &str) -> std::result::Result<Window, String> {
        let what = || {
            format!(
                "{text:?} is not a daily window: write two times of day, HH:MM/HH:MM, e.g. 02:00/18:30"
            )
        };
        let (start, end) = text.trim().split_once('/').ok_or_else(what)?;
        let minutes = |t: &str| -> Option<u16> {
            let (h, m) = t.trim().split_once(':')?;
            let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
            (h < 24 && m < 60).then_some(h * 60 + m)
        };
        let window = Window {
            start: minutes(start).ok_or_else(what)?,
            end: minutes(end).ok_or_else(what)?,
        };
        if window.start == window.end {
            return Err(format!(
                "{text:?} is an empty window: its start and end are the same time"
            ));
        }
        Ok(window)
    }
}

impl std::fmt::Display for Window {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:02}:{:02}/{:02}:{:02}",
            self.start / 60,
            self.start % 60,
            self.end / 60,
            self.end % 60
        )
    }
}

/// Days of the week, as bits: Monday 1, Tuesday 2, … Sunday 64 (django-pq's `weekdays`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Weekdays(pub u8);

const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

impl Weekdays {
    fn contains(self, at: DateTime<Utc>) -> bool {
        self.0 & (1 << at.weekday().num_days_from_monday()) != 0
    }
}

impl std::str::FromStr for Weekdays {
    type Err = String;

    fn from_str(text: &str) -> std::result::Result<Weekdays, String> {
        let mut bits = 0u8;
        for day in text.split(',') {
            let day = day.trim().to_ascii_lowercase();
            const FULL: [&str; 7] = [
                "monday",
                "tuesday",
                "wednesday",
                "thursday",
                "friday",
                "saturday",
                "sunday",
            ];
            let index = FULL
                .iter()
                .position(|full| day.len() >= 3 && full.starts_with(&day))
                .ok_or_else(|| {
                    format!(
                        "{day:?} is not a day of the week: write them comma-separated, e.g. mon,tue,wed,thu,fri"
                    )
                })?;
            bits |= 1 << index;
        }
        Ok(Weekdays(bits))
    }
}

impl std::fmt::Display for Weekdays {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let days: Vec<&str> = (0..7)
            .filter(|i| self.0 & (1 << i) != 0)
            .map(|i| DAY_NAMES[i])
            .collect();
        f.write_str(&days.join(","))
    }
}

/// A schedule to store, built with its options, then [`Store::add_schedule`](crate::Store::add_schedule).
#[derive(Debug, Clone, PartialEq)]
pub struct NewSchedule {
    pub(crate) name: String,
    pub(crate) task: String,
    pub(crate) args: Value,
    pub(crate) every: Option<Every>,
    pub(crate) start: Option<DateTime<Utc>>,
    pub(crate) repeat: Option<i32>,
    pub(crate) ends: Option<DateTime<Utc>>,
    pub(crate) between: Option<Window>,
    pub(crate) weekdays: Option<Weekdays>,
    pub(crate) queue: Option<String>,
    pub(crate) hook: Option<String>,
}

impl NewSchedule {
    /// A schedule `name` (unique) of task `task` with `args` (a JSON object keyed by parameter
    /// name); give it [`every`](Self::every) before adding it.
    pub fn new(name: impl Into<String>, task: impl Into<String>, args: Value) -> NewSchedule {
        NewSchedule {
            name: name.into(),
            task: task.into(),
            args,
            every: None,
            start: None,
            repeat: None,
            ends: None,
            between: None,
            weekdays: None,
            queue: None,
            hook: None,
        }
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// When its occurrences fall.
    pub fn every(mut self, every: Every) -> Self {
        self.every = Some(every);
        self
    }

    /// Its first occurrence (a step schedule) or the time before which none falls (cron); now
    /// by default.
    pub fn start(mut self, at: DateTime<Utc>) -> Self {
        self.start = Some(at);
        self
    }

    /// Enqueues `times` occurrences, then no more (`-1`: for ever, the default).
    pub fn repeat(mut self, times: i32) -> Self {
        self.repeat = (times >= 0).then_some(times);
        self
    }

    /// Enqueues no occurrence after `at`.
    pub fn until(mut self, at: DateTime<Utc>) -> Self {
        self.ends = Some(at);
        self
    }

    /// Only occurrences within this daily window (UTC) are enqueued.
    pub fn between(mut self, window: Window) -> Self {
        self.between = Some(window);
        self
    }

    /// Only occurrences on these days of the week are enqueued.
    pub fn weekdays(mut self, days: Weekdays) -> Self {
        self.weekdays = Some(days);
        self
    }

    /// Enqueues on this queue instead of the task's.
    pub fn on_queue(mut self, queue: impl Into<String>) -> Self {
        self.queue = Some(queue.into());
        self
    }

    /// Hands each execution it enqueues, once finished, to the registered [`Hook`](crate::Hook)
    /// named `hook` instead of its task's hook (django-pq's and django-q's schedule `hook`).
    /// An unknown name is refused when the schedule is added.
    pub fn hook(mut self, hook: impl Into<String>) -> Self {
        self.hook = Some(hook.into());
        self
    }

    /// Checks everything before anything is stored: the name, the task and its arguments, the
    /// cron expression or step, the repeats and the queue.
    pub(crate) fn validate(&self) -> Result<()> {
        let refuse = |reason: String| Error::InvalidStoredSchedule {
            name: self.name.clone(),
            reason,
        };
        if self.name.trim().is_empty() {
            return Err(refuse("a schedule needs a name".to_string()));
        }
        if crate::schedule::schedules()
            .iter()
            .any(|s| s.name() == self.name)
        {
            return Err(refuse(
                "a #[schedule] of this binary has this name: choose another".to_string(),
            ));
        }
        let task = crate::find_task(&self.task)?;
        if !self.args.is_object() {
            return Err(refuse(
                "the arguments must be a JSON object keyed by parameter name, e.g. {\"a\": 1}"
                    .to_string(),
            ));
        }
        task.check_args(&self.args)?;
        if let Some(hook) = &self.hook {
            crate::find_hook(hook)?;
        }
        match &self.every {
            None => {
                return Err(refuse(
                    "say when it runs: a cron expression (--cron \"0 8 * * *\") or a step (--interval 1h, monthly, month-end)"
                        .to_string(),
                ));
            }
            Some(Every::Cron { expr, tz }) => {
                let cron = CronSchedule::parse(expr, tz)?;
                if cron.is_manual() {
                    return Err(refuse(
                        "\"manual\" never runs by itself: a stored schedule needs a time"
                            .to_string(),
                    ));
                }
            }
            Some(Every::Seconds(0)) => {
                return Err(refuse(
                    "an interval of 0 would run without end: write e.g. --interval 30s or 1h"
                        .to_string(),
                ));
            }
            Some(Every::Months(0)) => {
                return Err(refuse(
                    "a step of 0 months never moves: write monthly, or a number of months from 1"
                        .to_string(),
                ));
            }
            Some(Every::Seconds(s)) if i64::try_from(*s).is_err() => {
                return Err(refuse(format!(
                    "an interval of {s} s is longer than time holds"
                )));
            }
            Some(_) => {}
        }
        if self.weekdays.is_some_and(|w| w.0 == 0) {
            return Err(refuse("no day of the week chosen".to_string()));
        }
        if let (Some(ends), Some(start)) = (self.ends, self.start)
            && ends < start
        {
            return Err(refuse(format!(
                "it would end ({ends}) before it starts ({start})"
            )));
        }
        if self.queue.as_deref().is_some_and(|q| q.trim().is_empty()) {
            return Err(refuse(
                "an empty queue name: leave it out for the task's queue".to_string(),
            ));
        }
        Ok(())
    }
}

/// A schedule stored in the database.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredSchedule {
    /// The row's id.
    pub id: i64,
    /// Its name (unique, among the compiled schedules too).
    pub name: String,
    /// The task it enqueues.
    pub task: String,
    /// The task's arguments.
    pub args: Value,
    /// When its occurrences fall.
    pub every: Every,
    /// Its first occurrence (a step) or the time before which none falls (cron).
    pub start: DateTime<Utc>,
    /// Occurrences left to enqueue (`None`: for ever).
    pub repeats_left: Option<i32>,
    /// No occurrence after this.
    pub ends: Option<DateTime<Utc>>,
    /// The daily window occurrences must fall in.
    pub between: Option<Window>,
    /// The days of the week occurrences must fall on.
    pub weekdays: Option<Weekdays>,
    /// The queue it enqueues on instead of the task's.
    pub queue: Option<String>,
    /// Paused: nothing is enqueued until it is resumed.
    pub paused: bool,
    /// When it was stored.
    pub created: DateTime<Utc>,
    /// The registered hook each execution it enqueues is handed to once finished, instead of
    /// its task's (`None`: the task's own, if any).
    pub hook: Option<String>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = crate::schema::stored_schedules)]
pub(crate) struct StoredScheduleRow {
    pub(crate) id: i64,
    pub(crate) name: String,
    pub(crate) task_name: String,
    pub(crate) args: String,
    pub(crate) cron: Option<String>,
    pub(crate) tz: String,
    pub(crate) interval_seconds: Option<i64>,
    pub(crate) interval_months: Option<i32>,
    pub(crate) month_end: bool,
    pub(crate) start: NaiveDateTime,
    pub(crate) repeats_left: Option<i32>,
    pub(crate) ends: Option<NaiveDateTime>,
    pub(crate) between_start: Option<i32>,
    pub(crate) between_end: Option<i32>,
    pub(crate) weekdays: Option<i32>,
    pub(crate) queue: Option<String>,
    pub(crate) paused: bool,
    pub(crate) created: NaiveDateTime,
    pub(crate) hook: Option<String>,
}

impl StoredScheduleRow {
    pub(crate) fn into_schedule(self) -> Result<StoredSchedule> {
        let corrupt = |reason: &str| Error::InvalidStoredSchedule {
            name: self.name.clone(),
            reason: format!("its stored row is corrupt: {reason}"),
        };
        let every = match (&self.cron, self.interval_seconds, self.interval_months) {
            (Some(expr), _, _) => Every::Cron {
                expr: expr.clone(),
                tz: self.tz.clone(),
            },
            (None, Some(s), _) => {
                Every::Seconds(u64::try_from(s).map_err(|_| corrupt("a negative interval"))?)
            }
            (None, None, _) if self.month_end => Every::MonthEnd,
            (None, None, Some(n)) => {
                Every::Months(u32::try_from(n).map_err(|_| corrupt("a negative step"))?)
            }
            _ => return Err(corrupt("neither a cron expression nor a step")),
        };
        Ok(StoredSchedule {
            id: self.id,
            task: self.task_name.clone(),
            args: serde_json::from_str(&self.args).map_err(|e| corrupt(&e.to_string()))?,
            every,
            start: self.start.and_utc(),
            repeats_left: self.repeats_left,
            ends: self.ends.map(|t| t.and_utc()),
            between: match (self.between_start, self.between_end) {
                (Some(start), Some(end)) => Some(Window {
                    start: start as u16,
                    end: end as u16,
                }),
                _ => None,
            },
            weekdays: self.weekdays.map(|w| Weekdays(w as u8)),
            queue: self.queue.clone(),
            paused: self.paused,
            created: self.created.and_utc(),
            hook: self.hook.clone(),
            name: self.name,
        })
    }
}

impl StoredSchedule {
    /// Whether `at` passes its window, week days and end.
    fn allows(&self, at: DateTime<Utc>) -> bool {
        self.between.is_none_or(|w| w.contains(at))
            && self.weekdays.is_none_or(|d| d.contains(at))
            && self.ends.is_none_or(|end| at <= end)
            && at >= self.start
    }

    /// Step `k` from the start (`None` past chrono's range).
    fn step(&self, k: i64) -> Option<DateTime<Utc>> {
        match &self.every {
            Every::Seconds(s) => self.start.checked_add_signed(TimeDelta::try_seconds(
                i64::try_from(*s).ok()?.checked_mul(k)?,
            )?),
            Every::Months(n) => self
                .start
                .checked_add_months(Months::new(u32::try_from(k).ok()?.checked_mul(*n)?)),
            Every::MonthEnd => {
                let month = self
                    .start
                    .with_day(1)?
                    .checked_add_months(Months::new(u32::try_from(k).ok()? + 1))?;
                month.checked_sub_signed(TimeDelta::days(1))
            }
            Every::Cron { .. } => None,
        }
    }

    /// The index of the last step at or before `at` (`None` before the start).
    fn last_step_at_or_before(&self, at: DateTime<Utc>) -> Option<i64> {
        if at < self.start {
            return None;
        }
        match &self.every {
            Every::Seconds(s) => Some((at - self.start).num_seconds() / i64::try_from(*s).ok()?),
            Every::Months(_) | Every::MonthEnd => {
                let months = (at.year() - self.start.year()) as i64 * 12 + at.month() as i64
                    - self.start.month() as i64;
                let per = match self.every {
                    Every::Months(n) => i64::from(n),
                    _ => 1,
                };
                let mut k = months / per + 1;
                while k >= 0 && self.step(k).is_none_or(|t| t > at) {
                    k -= 1;
                }
                (k >= 0).then_some(k)
            }
            Every::Cron { .. } => None,
        }
    }

    /// The latest occurrence at or before `now` and after `after`, if one passes its filters.
    pub fn latest_due(
        &self,
        after: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>> {
        let newer = |t: DateTime<Utc>| after.is_none_or(|a| t > a);
        if let Every::Cron { expr, tz } = &self.every {
            let cron = CronSchedule::parse(expr, tz)?;
            let mut cursor = now;
            for _ in 0..SEARCH_STEPS {
                let Some(t) = cron.latest_at_or_before(cursor) else {
                    return Ok(None);
                };
                if !newer(t) || t < self.start {
                    return Ok(None);
                }
                if self.allows(t) {
                    return Ok(Some(t));
                }
                cursor = t - TimeDelta::seconds(1);
            }
            return Ok(None);
        }
        let Some(mut k) = self.last_step_at_or_before(now) else {
            return Ok(None);
        };
        for _ in 0..SEARCH_STEPS {
            let Some(t) = self.step(k) else {
                return Ok(None);
            };
            if !newer(t) {
                return Ok(None);
            }
            if self.allows(t) {
                return Ok(Some(t));
            }
            if k == 0 {
                return Ok(None);
            }
            k -= 1;
        }
        Ok(None)
    }

    /// Its next occurrence after `after` that passes its filters, while repeats are left.
    pub fn next_due(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if self.repeats_left == Some(0) {
            return None;
        }
        if let Every::Cron { expr, tz } = &self.every {
            let cron = CronSchedule::parse(expr, tz).ok()?;
            let mut cursor = after.max(self.start - TimeDelta::seconds(1));
            for _ in 0..SEARCH_STEPS {
                let t = cron.next_after(cursor)?;
                if self.ends.is_some_and(|end| t > end) {
                    return None;
                }
                if self.allows(t) {
                    return Some(t);
                }
                cursor = t;
            }
            return None;
        }
        let first = self.last_step_at_or_before(after).map_or(0, |k| k + 1);
        for k in first..first.saturating_add(SEARCH_STEPS as i64) {
            let t = self.step(k)?;
            if self.ends.is_some_and(|end| t > end) {
                return None;
            }
            if t > after && self.allows(t) {
                return Some(t);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn schedule(every: Every, start: &str) -> StoredSchedule {
        StoredSchedule {
            id: 1,
            name: "s".into(),
            task: "t".into(),
            args: serde_json::json!({}),
            every,
            start: at(start),
            repeats_left: None,
            ends: None,
            between: None,
            weekdays: None,
            queue: None,
            paused: false,
            created: at(start),
            hook: None,
        }
    }

    #[test]
    fn windows_and_weekdays_parse_and_say_what_to_write() {
        let w: Window = "2:00/18:30".parse().unwrap();
        assert_eq!((w.start, w.end), (120, 1110));
        assert_eq!(w.to_string(), "02:00/18:30");
        let night: Window = "22:00/06:00".parse().unwrap();
        assert!(night.contains(at("2026-01-01T23:30:00Z")));
        assert!(night.contains(at("2026-01-01T05:59:00Z")));
        assert!(!night.contains(at("2026-01-01T06:00:00Z")));
        assert!(
            "25:00/18:30"
                .parse::<Window>()
                .unwrap_err()
                .contains("HH:MM/HH:MM")
        );
        assert!(
            "2:00"
                .parse::<Window>()
                .unwrap_err()
                .contains("e.g. 02:00/18:30")
        );
        let days: Weekdays = "mon,Wed,friday".parse().unwrap();
        assert_eq!(days.to_string(), "mon,wed,fri");
        assert!(days.contains(at("2026-12-07T10:00:00Z")), "a Monday");
        assert!(!days.contains(at("2026-12-08T10:00:00Z")), "a Tuesday");
        assert!(
            "mon,funday"
                .parse::<Weekdays>()
                .unwrap_err()
                .contains("mon,tue,wed")
        );
    }

    #[test]
    fn steps_from_the_start_with_filters() {
        let mut s = schedule(Every::Seconds(3600), "2026-12-07T00:00:00Z");
        assert_eq!(
            s.latest_due(None, at("2026-12-07T05:30:00Z")).unwrap(),
            Some(at("2026-12-07T05:00:00Z"))
        );
        assert_eq!(
            s.latest_due(Some(at("2026-12-07T05:00:00Z")), at("2026-12-07T05:30:00Z"))
                .unwrap(),
            None,
            "already enqueued"
        );
        assert_eq!(
            s.latest_due(None, at("2026-12-06T23:00:00Z")).unwrap(),
            None
        );
        s.between = Some("02:00/04:30".parse().unwrap());
        assert_eq!(
            s.latest_due(None, at("2026-12-07T05:30:00Z")).unwrap(),
            Some(at("2026-12-07T04:00:00Z"))
        );
        assert_eq!(
            s.next_due(at("2026-12-07T05:30:00Z")),
            Some(at("2026-12-08T02:00:00Z"))
        );
        s.weekdays = Some("tue".parse().unwrap());
        assert_eq!(
            s.latest_due(None, at("2026-12-07T05:30:00Z")).unwrap(),
            None,
            "a Monday"
        );
        s.repeats_left = Some(0);
        assert_eq!(s.next_due(at("2026-12-07T05:30:00Z")), None);
    }

    #[test]
    fn calendar_steps_keep_the_day_or_take_the_months_last() {
        let monthly = schedule(Every::Months(1), "2026-01-31T08:00:00Z");
        assert_eq!(
            monthly.next_due(at("2026-01-31T08:00:00Z")),
            Some(at("2026-02-28T08:00:00Z"))
        );
        assert_eq!(
            monthly
                .latest_due(None, at("2026-04-01T00:00:00Z"))
                .unwrap(),
            Some(at("2026-03-31T08:00:00Z"))
        );
        let month_end = schedule(Every::MonthEnd, "2026-01-10T23:00:00Z");
        assert_eq!(
            month_end.next_due(at("2026-01-10T23:00:00Z")),
            Some(at("2026-01-31T23:00:00Z"))
        );
        assert_eq!(
            month_end.next_due(at("2026-01-31T23:00:00Z")),
            Some(at("2026-02-28T23:00:00Z"))
        );
    }

    #[test]
    fn cron_with_a_window() {
        let mut s = schedule(
            Every::Cron {
                expr: "0 * * * *".into(),
                tz: "UTC".into(),
            },
            "2026-12-01T00:00:00Z",
        );
        s.between = Some("09:00/17:00".parse().unwrap());
        assert_eq!(
            s.latest_due(None, at("2026-12-07T20:10:00Z")).unwrap(),
            Some(at("2026-12-07T16:00:00Z"))
        );
        assert_eq!(
            s.next_due(at("2026-12-07T20:10:00Z")),
            Some(at("2026-12-08T09:00:00Z"))
        );
    }
}
