//! `ScheduleExec`: what the database remembers of each schedule, so that every occurrence is
//! enqueued exactly once however many workers run, and missed ones can be caught up.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::schema::schedule_execs::dsl as se;
use crate::store::Store;

/// Whether a schedule row still has a registered schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleState {
    /// A registered schedule has this name.
    Active,
    /// No registered schedule has this name any more; nothing is enqueued for it.
    Invalid,
}

impl ScheduleState {
    /// The name stored in the database (`"active"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            ScheduleState::Active => "active",
            ScheduleState::Invalid => "invalid",
        }
    }
}

impl std::fmt::Display for ScheduleState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One schedule's row in `schedule_execs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduleExec {
    /// The row's id.
    pub id: i64,
    /// The schedule's name.
    pub name: String,
    /// The latest occurrence enqueued; `None` before the first (with `run_on_creation`).
    pub last_due: Option<DateTime<Utc>>,
    /// The execution enqueued last (by an occurrence or a run on demand).
    pub last_task: Option<i64>,
    /// Whether a registered schedule still has this name.
    pub state: ScheduleState,
}

#[derive(Debug, Clone, Queryable)]
pub(crate) struct ScheduleExecRow {
    pub(crate) id: i64,
    pub(crate) name: String,
    pub(crate) last_due: Option<NaiveDateTime>,
    pub(crate) last_task: Option<i64>,
    pub(crate) state: String,
}

impl From<ScheduleExecRow> for ScheduleExec {
    fn from(row: ScheduleExecRow) -> Self {
        ScheduleExec {
            id: row.id,
            name: row.name,
            last_due: row.last_due.map(|t| t.and_utc()),
            last_task: row.last_task,
            state: if row.state == ScheduleState::Invalid.as_str() {
                ScheduleState::Invalid
            } else {
                ScheduleState::Active
            },
        }
    }
}

impl ScheduleExec {
    /// Every schedule row of `store`, by name.
    pub fn list_in(store: &Store) -> Result<Vec<ScheduleExec>> {
        let rows = store.autocommit(
            || "listing schedules".to_string(),
            |c| {
                se::schedule_execs
                    .order(se::name)
                    .load::<ScheduleExecRow>(c)
            },
        )?;
        Ok(rows.into_iter().map(ScheduleExec::from).collect())
    }
}
