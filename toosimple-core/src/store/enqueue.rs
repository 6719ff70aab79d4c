//! Inserting executions, with unique tasks resolved by the database's partial unique index.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::AnyConnection;
use super::driver::{Driver, driver};

/// Rows per multi-row `INSERT`: 17 bound columns each (18 with the `otel` feature) stays under both backends' limits on
/// bound parameters (SQLite 32,766, PostgreSQL 65,535).
pub(super) const INSERT_BATCH: usize = 1_000;

/// A new `task_execs` row.
#[doc(hidden)]
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = crate::schema::task_execs, treat_none_as_default_value = false)]
pub struct NewTaskExec {
    pub task_name: String,
    pub args: String,
    pub queue: String,
    pub priority: i32,
    pub state: &'static str,
    pub due: NaiveDateTime,
    pub created: NaiveDateTime,
    pub retries: i32,
    pub retry_delay: i64,
    pub replaced_by: Option<i64>,
    pub unique_key: Option<String>,
    pub schedule: Option<String>,
    pub timeout_ms: Option<i64>,
    pub result_ttl: Option<i64>,
    pub hook: Option<String>,
    /// The row's signature (`crate::Signing`), `None` without a key.
    pub signature: Option<String>,
    /// The flow it is a step of.
    pub flow_id: Option<i64>,
    /// Whether `retries` are the row's own rather than the default 0, which its queue's
    /// default retries replace at its claim (see `crate::QueueSettings`).
    pub own_retries: bool,
    /// The enqueuing span's W3C trace context ([`ClaimedExec::trace_context`]). Only with the
    /// `otel` feature: without it the `INSERT` binds no more columns than before.
    ///
    /// [`ClaimedExec::trace_context`]: crate::store::ClaimedExec::trace_context
    #[cfg(feature = "otel")]
    pub trace_context: Option<String>,
}

/// Where an enqueued row went.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Enqueued {
    /// The new row, or the pending row a unique task's duplicate was folded into.
    pub id: i64,
    /// Whether `id` is an existing pending row rather than a new one.
    pub duplicate: bool,
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for diesel::SqliteConnection {}
    impl Sealed for diesel::PgConnection {}
    impl Sealed for diesel::MysqlConnection {}
    impl Sealed for super::AnyConnection {}
    impl Sealed for crate::store::StoreConnection {}
}

/// A diesel connection a task can be enqueued through, so that the task row commits or rolls
/// back with the caller's own transaction: `SqliteConnection`, `PgConnection`,
/// `MysqlConnection`, or the
/// [`AnyConnection`] of a [`Store`](crate::Store), pooled or not.
///
/// The connection must reach the same database the workers use, and its migrations must have
/// run (connecting a [`Store`](crate::Store) to it once does that).
pub trait EnqueueConnection: sealed::Sealed {
    /// Inserts `rows` in order, in one transaction (a savepoint inside the caller's).
    #[doc(hidden)]
    fn __enqueue(&mut self, rows: &[NewTaskExec]) -> QueryResult<Vec<Enqueued>>;

    /// Where this connection's data lives, for error messages: the SQLite file's path, or
    /// the PostgreSQL database's name.
    #[doc(hidden)]
    fn __location(&mut self) -> String;
}

impl EnqueueConnection for AnyConnection {
    fn __enqueue(&mut self, rows: &[NewTaskExec]) -> QueryResult<Vec<Enqueued>> {
        driver(self).enqueue(rows)
    }

    fn __location(&mut self) -> String {
        driver(self).location()
    }
}

impl EnqueueConnection for super::StoreConnection {
    fn __enqueue(&mut self, rows: &[NewTaskExec]) -> QueryResult<Vec<Enqueued>> {
        (**self).__enqueue(rows)
    }

    fn __location(&mut self) -> String {
        (**self).__location()
    }
}

impl EnqueueConnection for diesel::SqliteConnection {
    fn __enqueue(&mut self, rows: &[NewTaskExec]) -> QueryResult<Vec<Enqueued>> {
        Driver::enqueue(self, rows)
    }

    fn __location(&mut self) -> String {
        Driver::location(self)
    }
}

impl EnqueueConnection for diesel::PgConnection {
    fn __enqueue(&mut self, rows: &[NewTaskExec]) -> QueryResult<Vec<Enqueued>> {
        Driver::enqueue(self, rows)
    }

    fn __location(&mut self) -> String {
        Driver::location(self)
    }
}

impl EnqueueConnection for diesel::MysqlConnection {
    fn __enqueue(&mut self, rows: &[NewTaskExec]) -> QueryResult<Vec<Enqueued>> {
        Driver::enqueue(self, rows)
    }

    fn __location(&mut self) -> String {
        Driver::location(self)
    }
}

#[derive(QueryableByName)]
pub(super) struct Location {
    #[diesel(sql_type = diesel::sql_types::Text)]
    location: String,
}

/// Asks the connection where its data lives; reading still works on a full disk.
pub(super) fn location_of<C>(conn: &mut C, sql: &str, fallback: &str) -> String
where
    C: diesel::connection::LoadConnection,
    diesel::query_builder::SqlQuery: diesel::query_dsl::LoadQuery<'static, C, Location>,
{
    diesel::sql_query(sql)
        .load::<Location>(conn)
        .ok()
        .and_then(|rows| rows.into_iter().next())
        .map_or_else(|| fallback.to_string(), |l| l.location)
}

/// The body of each driver's `enqueue`: the same diesel code, compiled for each concrete
/// connection (the multi-backend dialect has no `ON CONFLICT`).
macro_rules! enqueue_body {
    ($conn:expr, $rows:expr) => {{
        #[allow(unused_imports)]
        use ::chrono::NaiveDateTime;
        #[allow(unused_imports)]
        use $crate::State;
        #[allow(unused_imports)]
        use $crate::schema::task_execs::dsl as te;
        #[allow(unused_imports)]
        use $crate::store::enqueue::{Enqueued, INSERT_BATCH, NewTaskExec, insert_unique};
        #[allow(unused_imports)]
        use $crate::store::to_completion::RunToCompletion;
        let conn = $conn;
        let rows: &[NewTaskExec] = $rows;
        if let [row] = rows
            && row.unique_key.is_none()
            && row.schedule.is_none()
        {
            // One statement is atomic by itself: no transaction round trips. Its commit is
            // the statement's end, so it must run to completion.
            let id = diesel::insert_into(te::task_execs)
                .values(row)
                .returning(te::id)
                .one_to_completion(conn)?;
            return Ok(vec![Enqueued {
                id,
                duplicate: false,
            }]);
        }
        conn.transaction(|c| {
            let mut out = Vec::with_capacity(rows.len());
            let mut start = 0;
            while start < rows.len() {
                if rows[start].unique_key.is_some() || rows[start].schedule.is_some() {
                    out.push(insert_unique!(c, &rows[start]));
                    start += 1;
                    continue;
                }
                let end = rows[start..]
                    .iter()
                    .take(INSERT_BATCH)
                    .position(|r| r.unique_key.is_some() || r.schedule.is_some())
                    .map_or((start + INSERT_BATCH).min(rows.len()), |p| start + p);
                let mut ids: Vec<i64> = diesel::insert_into(te::task_execs)
                    .values(&rows[start..end])
                    .returning(te::id)
                    .get_results(c)?;
                // Ids grow in VALUES order on both backends; RETURNING's order is not
                // promised, so sort to hand back handles in the caller's order.
                ids.sort_unstable();
                out.extend(ids.into_iter().map(|id| Enqueued {
                    id,
                    duplicate: false,
                }));
                start = end;
            }
            Ok(out)
        })
    }};
}

/// Inserts a unique task's row, or folds it into the pending row with the same key; inserts a
/// schedule's occurrence, or finds it already there.
///
/// The partial unique index decides, so concurrent enqueuers cannot both insert. A pending row
/// that a worker claims between our failed insert and our look-up is no longer pending: then
/// the insert is tried again.
macro_rules! insert_unique {
    ($c:expr, $row:expr) => {
        insert_unique!($c, $row, |row| diesel::insert_into(te::task_execs)
            .values(row)
            .on_conflict_do_nothing()
            .returning(te::id)
            .optional_to_completion($c))
    };
    // `$insert`, with `$r` the row, inserts it or returns `None` when a unique index refused it.
    ($c:expr, $row:expr, |$r:ident| $insert:expr) => {{
        #[allow(unused_imports)]
        use ::chrono::NaiveDateTime;
        #[allow(unused_imports)]
        use $crate::State;
        #[allow(unused_imports)]
        use $crate::schema::task_execs::dsl as te;
        #[allow(unused_imports)]
        use $crate::store::enqueue::{Enqueued, NewTaskExec};
        #[allow(unused_imports)]
        use $crate::store::to_completion::RunToCompletion;
        let row: &NewTaskExec = $row;
        let key = row.unique_key.as_deref();
        let pending = [State::Sleeping.as_str(), State::Queued.as_str()];
        let mut attempt = 0;
        loop {
            attempt += 1;
            let inserted: Option<i64> = {
                let $r = row;
                $insert
            }?;
            if let Some(id) = inserted {
                break Enqueued {
                    id,
                    duplicate: false,
                };
            }
            let existing: Option<(i64, String, NaiveDateTime)> = match key {
                Some(key) => te::task_execs
                    .filter(te::unique_key.eq(key))
                    .filter(te::state.eq_any(pending))
                    .select((te::id, te::state, te::due))
                    .optional_to_completion($c)?,
                None => None,
            };
            // A schedule's occurrence that is already materialized counts as enqueued.
            if existing.is_none()
                && let Some(schedule) = &row.schedule
            {
                let materialized: Option<i64> = te::task_execs
                    .filter(te::schedule.eq(schedule))
                    .filter(te::due.eq(row.due))
                    .select(te::id)
                    .optional_to_completion($c)?;
                if let Some(id) = materialized {
                    break Enqueued {
                        id,
                        duplicate: true,
                    };
                }
            }
            match existing {
                Some((id, state, due)) => {
                    if state == State::Sleeping.as_str() {
                        let sleeping = te::task_execs
                            .find(id)
                            .filter(te::state.eq(State::Sleeping.as_str()));
                        if row.state == State::Queued.as_str() {
                            // Asked to run now: the sleeping duplicate wakes.
                            diesel::update(sleeping)
                                .set((te::state.eq(State::Queued.as_str()), te::due.eq(row.due)))
                                .execute($c)?;
                        } else if row.due < due {
                            diesel::update(sleeping)
                                .set(te::due.eq(row.due))
                                .execute($c)?;
                        }
                    }
                    break Enqueued {
                        id,
                        duplicate: true,
                    };
                }
                None if attempt < 10 => continue,
                None => {
                    return Err(diesel::result::Error::QueryBuilderError(
                        format!("unique task key {key:?} kept conflicting without a pending row")
                            .into(),
                    ));
                }
            }
        }
    }};
}

pub(super) use {enqueue_body, insert_unique};
