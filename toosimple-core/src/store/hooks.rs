//! What workers write about hooks: that one ran and how it failed, and which hooks were left
//! behind by their worker.

use chrono::{DateTime, TimeDelta, Utc};
use diesel::prelude::*;

use super::Store;
use super::driver::driver;
use crate::error::Result;
use crate::schema::task_execs::dsl as te;

impl Store {
    /// Records that the hooks of execution `id` ran at `at`, and how they failed (`None`:
    /// they did not). Not API: the worker calls it.
    #[doc(hidden)]
    pub fn record_hook(&self, id: i64, at: DateTime<Utc>, error: Option<&str>) -> Result<()> {
        let error = error.map(|e| e.replace('\0', "\\0"));
        self.autocommit(
            || format!("recording the hook of task execution {id}"),
            |c| {
                diesel::update(te::task_execs.find(id))
                    .set((te::hook_ran.eq(at.naive_utc()), te::hook_error.eq(error)))
                    .execute(c)
            },
        )?;
        Ok(())
    }

    /// Takes up to `limit` finished executions whose hook (one of `hooks`) no worker called:
    /// at once when no worker ran them (a cancel), else once `grace` has passed since they
    /// finished. Each is marked as called now, in the same statement that takes it, so that
    /// two workers never take the same one. Returns their ids. Not API: a worker's pass.
    #[doc(hidden)]
    pub fn take_pending_hooks(
        &self,
        now: DateTime<Utc>,
        grace: TimeDelta,
        hooks: &[&str],
        limit: usize,
    ) -> Result<Vec<i64>> {
        let cutoff = now
            .checked_sub_signed(grace)
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
            .naive_utc();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.write(
            || "taking the hooks workers left behind".to_string(),
            |c| {
                let due: Vec<i64> = te::task_execs
                    .select(te::id)
                    .filter(te::hook.is_not_null())
                    .filter(te::hook_ran.is_null())
                    .filter(te::finished.is_not_null())
                    .filter(te::worker.is_null().or(te::finished.le(cutoff)))
                    .filter(te::hook.eq_any(hooks))
                    .order(te::finished)
                    .limit(limit)
                    .load(c)?;
                if due.is_empty() {
                    return Ok(due);
                }
                driver(c).mark_hooks_taken(&due, now.naive_utc())
            },
        )
    }
}

/// The rows of `$ids` whose hook has not run, re-checked under the row locks of the update that
/// marks them taken at `$now` (a worker that took one meanwhile keeps it), returned by id: for
/// the drivers whose `UPDATE` returns rows.
macro_rules! mark_hooks_taken_returning {
    ($conn:expr, $ids:expr, $now:expr) => {{
        use $crate::schema::task_execs::dsl as te;
        ::diesel::update(
            te::task_execs
                .filter(te::id.eq_any($ids))
                .filter(te::hook_ran.is_null()),
        )
        .set(te::hook_ran.eq($now))
        .returning(te::id)
        .get_results($conn)
    }};
}

pub(super) use mark_hooks_taken_returning;
