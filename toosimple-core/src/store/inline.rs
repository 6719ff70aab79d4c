//! Claiming chosen executions by id: what a test's inline mode runs at once, in the caller's
//! thread, instead of leaving it to a worker.

use chrono::{DateTime, Utc};

use super::Store;
use super::claim::ClaimedExec;
use super::driver::driver;
use crate::error::Result;

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
            |c| driver(c).claim_ids(ids, worker, now.naive_utc()),
        )
        .map(|mut claimed| {
            claimed.iter_mut().for_each(crate::compression::inflate);
            claimed
        })
    }
}

/// Claims those of `$ids` still `Queued` for `$worker` at `$now` and returns them as claimed:
/// for the drivers whose `UPDATE` returns rows.
macro_rules! claim_ids_returning {
    ($conn:expr, $ids:expr, $worker:expr, $now:expr) => {{
        use $crate::schema::task_execs::dsl as te;
        ::diesel::update(
            te::task_execs
                .filter(te::id.eq_any($ids))
                .filter(te::state.eq($crate::State::Queued.as_str())),
        )
        .set((
            te::state.eq($crate::State::Processing.as_str()),
            te::started.eq($now),
            te::worker.eq($worker),
        ))
        .returning($crate::store::claim::CLAIMED_COLUMNS)
        .get_results($conn)
    }};
}

pub(super) use claim_ids_returning;
