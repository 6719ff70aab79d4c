//! The one seam between the store and a database backend.
//!
//! Every operation whose SQL differs between backends is a method of [`Driver`], implemented
//! in `sqlite/`, `postgres/` and `mysql/`; the rest of the store writes diesel code once, against
//! [`AnyConnection`]. This file holds the only `match` on the backend: turning a URL into a
//! connection and an [`AnyConnection`] into its driver. Adding a backend means one more
//! implementation file, one more arm in each function below, and a migrations folder.

use chrono::NaiveDateTime;
use diesel::QueryResult;
use diesel::result::ConnectionResult;

use super::claim::{ClaimRequest, ClaimedExec};
use super::complete::{Holder, OutcomeRow};
use super::enqueue::{Enqueued, NewTaskExec};
use super::flows::NewFlow;
use super::url::Target;
use super::{AnyConnection, Backend, mysql, sqlite};
use crate::queue::QueueRow;
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

    /// Reads queue `name`'s settings row and locks it until the transaction ends (SQLite's
    /// write transaction already excludes other writers): the limited claim's turnstile.
    fn lock_queue(&mut self, name: &str) -> QueryResult<Option<QueueRow>>;

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

    /// How many rows of `task_execs` are in each of `states`, states too big to count row by
    /// row in a view, as `(count, exact)`; `others` rows are in the other states (counted).
    /// SQLite counts them (the first as the table's row count, read page by page, less the
    /// rest); PostgreSQL, MariaDB and MySQL give their planner's estimates.
    fn count_big_states(&mut self, states: &[&str], others: i64) -> QueryResult<Vec<(i64, bool)>>;

    /// Counts succeeded and failed executions per minute finished since `since`.
    fn finished_per_minute(&mut self, since: NaiveDateTime) -> QueryResult<Vec<MinuteCount>>;

    /// Counts the executions finished (in any state) in each second since `since`, through
    /// the index on finish times: the monitor's throughput.
    fn finished_per_second(&mut self, since: NaiveDateTime) -> QueryResult<Vec<SecondCount>>;

    /// Deletes up to `limit` finished executions whose own TTL (`result_ttl` seconds after
    /// `finished`, not negative) has run out at `now`, that no remaining execution replaced
    /// (a retry chain goes from its last execution back, so it never loses its end first)
    /// and whose hook, if any, has run.
    fn delete_expired(&mut self, now: NaiveDateTime, limit: i64) -> QueryResult<usize>;

    /// Interrupts the `Processing` rows `holder` holds (state, `reason`, finished `now`) and
    /// returns them as they were claimed.
    fn interrupt(
        &mut self,
        holder: &Holder<'_>,
        reason: &str,
        now: NaiveDateTime,
    ) -> QueryResult<Vec<ClaimedExec>>;

    /// The same for executions without a TTL of their own (the workers' default) that
    /// finished at `cutoff` or before.
    fn delete_expired_by_default(
        &mut self,
        cutoff: NaiveDateTime,
        limit: i64,
    ) -> QueryResult<usize>;

    /// Records a heartbeat of worker `label` at `now` with its `handled` count, and reads the
    /// stop asked of it: one entry per status row (none when it has none).
    fn beat(
        &mut self,
        label: &str,
        now: NaiveDateTime,
        handled: i64,
    ) -> QueryResult<Vec<Option<String>>>;

    /// Marks those of `ids` whose hook has not run as taken at `now`, under their row locks
    /// (a worker that took one first keeps it); returns the ids it marked.
    fn mark_hooks_taken(&mut self, ids: &[i64], now: NaiveDateTime) -> QueryResult<Vec<i64>>;

    /// Claims those of `ids` still `Queued` for `worker` at `now`; returns them as claimed.
    fn claim_ids(
        &mut self,
        ids: &[i64],
        worker: &str,
        now: NaiveDateTime,
    ) -> QueryResult<Vec<ClaimedExec>>;

    /// Deletes up to `limit` succeeded executions older than the `keep` newest successes
    /// (django-q's save limit), among those without a TTL of their own, that ended no retry
    /// chain of earlier runs (failures are kept, and their chain with them) and whose hook,
    /// if any, has run.
    fn delete_over_save_limit(&mut self, keep: i64, limit: i64) -> QueryResult<usize>;

    /// Inserts a flow's row and returns its id.
    fn insert_flow(&mut self, row: &NewFlow) -> QueryResult<i64>;
}

/// Opens a connection to `target` with the backend's own settings.
pub(crate) fn establish(target: &Target) -> ConnectionResult<AnyConnection> {
    match target {
        Target::Sqlite { path } => sqlite::establish(path).map(AnyConnection::Sqlite),
        Target::Postgres { url, pooled } => {
            super::postgres::establish(url, *pooled).map(AnyConnection::Postgresql)
        }
        Target::Mysql { url } => mysql::establish(url).map(AnyConnection::Mysql),
    }
}

/// Starts waking `wake` whenever executions are inserted: PostgreSQL's `LISTEN`, SQLite's
/// change counter; `None` for an in-memory SQLite database, which no other connection sees,
/// and for MariaDB and MySQL, which have no notification channel (their workers poll at each
/// tick).
pub(crate) fn spawn_wakeups(
    target: &Target,
    wake: std::sync::Arc<tokio::sync::Notify>,
) -> Option<super::WakeupSource> {
    match target {
        Target::Sqlite { .. } if target.is_memory() => None,
        Target::Sqlite { path } => sqlite::watch::spawn(path.clone(), wake),
        Target::Postgres { url, pooled } => super::postgres::listen_url(url, *pooled)
            .map(|url| super::WakeupSource::Task(super::postgres::listen::spawn(url, wake))),
        Target::Mysql { .. } => None,
    }
}

/// How a worker of `target` learns of new executions, for its start-up log.
pub(crate) fn describe_wakeups(target: &Target) -> String {
    match target {
        Target::Sqlite { .. } if target.is_memory() => {
            "polling at each tick (an in-memory database)".to_string()
        }
        Target::Sqlite { .. } if cfg!(target_os = "linux") => {
            "the file's change counter, read when inotify sees the -wal file change".to_string()
        }
        Target::Sqlite { .. } => "the file's change counter, read every 3 ms".to_string(),
        Target::Postgres { url, pooled } => super::postgres::describe_wakeups(url, *pooled),
        Target::Mysql { .. } => {
            "polling at each tick (MariaDB and MySQL have no notifications)".to_string()
        }
    }
}

/// The driver of the backend `conn` is connected to.
pub(crate) fn driver(conn: &mut AnyConnection) -> &mut dyn Driver {
    match conn {
        AnyConnection::Sqlite(c) => c,
        AnyConnection::Postgresql(c) => c,
        AnyConnection::Mysql(c) => c,
    }
}
