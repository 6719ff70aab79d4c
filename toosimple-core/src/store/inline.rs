//! Claiming chosen executions by id: what a test's inline mode runs at once, in the caller's
//! thread, instead of leaving it to a worker.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::Store;
use super::claim::{CLAIMED_COLUMNS, ClaimedExec};
use crate::State;
use crate::error::Result;
use crate::schema::task_execs::dsl as te;

impl Store {
    /// Claims executions `ids` for `worker` at `now`, those still `Queued` (a worker may have
    /// taken one first). Not API: a test's inline mode calls it.
    #[doc(hidden)]
    pub fn claim_ids(
        &self,
        worker: &str,
        ids: &[i64],
        now: DateTime<Utc>,
    ) -> Result<Vec<ClaimedExec>> {
        self.write(
            || format!("claiming executions {ids:?} to run them inline"),
            |c| {
                diesel::update(
                    te::task_execs
                        .filter(te::id.eq_any(ids))
                        .filter(te::state.eq(State::Queued.as_str())),
                )
                .set((
                    te::state.eq(State::Processing.as_str()),
                    te::started.eq(now.naive_utc()),
                    te::worker.eq(worker),
                ))
                .returning(CLAIMED_COLUMNS)
                .get_results(c)
            },
        )
    }
}
