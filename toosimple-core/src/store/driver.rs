//! The one seam between the store and a database backend.
//!
//! Every operation whose SQL differs between backends is a method of [`Driver`], implemented
//! in `sqlite.rs` and `postgres.rs`; the rest of the store writes diesel code once, against
//! [`AnyConnection`]. This file holds the only `match` on the backend: turning a URL into a
//! connection and an [`AnyConnection`] into its driver. Adding a backend means one more
//! implementation file, one more arm in each function below, and a migrations folder.

use chrono::NaiveDateTime;
use diesel::QueryResult;
use diesel::result::ConnectionResult;

use super::claim::{ClaimRequest, ClaimedExec};
use super::complete::OutcomeRow;
use super::enqueue::{Enqueued, NewTaskExec};
use super::url::Target;
use super::{AnyConnection, Backend, sqlite};
use crate::schedule_exec::ScheduleExecRow;

/// One (minute, state) count of finished executions; the minute as seconds since the epoch.
#[derive(Debug, Clone, PartialEq, Eq, diesel::QueryableByName)]
pub struct MinuteCount {
    /// The minute's start, seconds since the Unix epoch.
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub minute: i64,
    /// `succeeded` or `failed`.
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub state: String,
    /// How many.
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub n: i64,
}

/// How many executions finished in one second.
#[derive(Debug, Clone, PartialEq, Eq, diesel::QueryableByName)]
pub struct SecondCount {
    /// The second, since the Unix epoch.
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub second: i64,
    /// How many.
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub n: i64,
}

/// The backend-specific operations of the store.
pub(crate) trait Driver {
    /// Which backend this is.
    fn backend(&self) -> Backend;

    /// Applies the embedded migrations that have not run yet, safely against other processes
    /// doing the same.
    fn migrate(&mut self) -> Result<(), Box<dyn std::error::Error + Send + Sync>>;

    /// Begins a transaction for read-then-write work (on SQLite it takes the write lock at
    /// once, so that two writers never both read and then fail to upgrade).
    fn begin_write(&mut self) -> QueryResult<()>;

    /// Commits the transaction `begin_write` opened.
    fn commit(&mut self) -> QueryResult<()>;

    /// Rolls it back.
    fn rollback(&mut self) -> QueryResult<()>;

    /// Inserts `rows` in order (unique rows folded into their pending duplicate, schedule
    /// occurrences found when already there), atomically.
    fn enqueue(&mut self, rows: &[NewTaskExec]) -> QueryResult<Vec<Enqueued>>;

    /// Where the data lives, for error messages.
    fn location(&mut self) -> String;

    /// Claims up to `request.limit` queued rows for `request.worker`, in claim order.
    fn claim(&mut self, request: &ClaimRequest<'_>) -> QueryResult<Vec<ClaimedExec>>;

    /// Writes outcomes on the rows `worker` still holds; returns the ids written.
    fn record_outcomes(&mut self, worker: &str, rows: &[OutcomeRow<'_>]) -> QueryResult<Vec<i64>>;

    /// Reads and locks the schedule rows named `names` that no other worker holds.
    fn lock_schedules(&mut self, names: &[&str]) -> QueryResult<Vec<ScheduleExecRow>>;

    /// Creates a schedule's row, or returns `None` when another worker just did.
    fn create_schedule(
        &mut self,
        name: &str,
        last_due: Option<NaiveDateTime>,
    ) -> QueryResult<Option<ScheduleExecRow>>;

    /// The current time by the clock every worker of this database shares.
    fn database_now(&mut self) -> QueryResult<chrono::DateTime<chrono::Utc>>;

    /// Counts succeeded and failed executions per minute finished since `since`.
    fn finished_per_minute(&mut self, since: NaiveDateTime) -> QueryResult<Vec<MinuteCount>>;

    /// Counts the executions finished (in any state) in each second since `since`, through
    /// the index on finish times: the monitor's throughput.
    fn finished_per_second(&mut self, since: NaiveDateTime) -> QueryResult<Vec<SecondCount>>;

    /// Deletes up to `limit` finished executions whose TTL (`result_ttl` seconds after
    /// `finished`) has run out at `now` and that no remaining execution replaced: a retry
    /// chain goes from its last execution back, so it never loses its end first.
    fn delete_expired(&mut self, now: NaiveDateTime, limit: i64) -> QueryResult<usize>;
}

/// Opens a connection to `target` with the backend's own settings.
pub(crate) fn establish(target: &Target) -> ConnectionResult<AnyConnection> {
    match target {
        Target::Sqlite { path } => sqlite::establish(path).map(AnyConnection::Sqlite),
        Target::Postgres { url } => super::postgres::establish(url).map(AnyConnection::Postgresql),
    }
}

/// Starts waking `wake` whenever executions are inserted: PostgreSQL's `LISTEN`, SQLite's
/// change counter; `None` for an in-memory SQLite database, which no other connection sees.
pub(crate) fn spawn_wakeups(
    target: &Target,
    wake: std::sync::Arc<tokio::sync::Notify>,
) -> Option<super::WakeupSource> {
    match target {
        Target::Sqlite { .. } if target.is_memory() => None,
        Target::Sqlite { path } => sqlite::watch::spawn(path.clone(), wake),
        Target::Postgres { url } => Some(super::WakeupSource::Task(
            super::postgres::listen::spawn(url.clone(), wake),
        )),
    }
}

/// The driver of the backend `conn` is connected to.
pub(crate) fn driver(conn: &mut AnyConnection) -> &mut dyn Driver {
    match conn {
        AnyConnection::Sqlite(c) => c,
        AnyConnection::Postgresql(c) => c,
    }
}
