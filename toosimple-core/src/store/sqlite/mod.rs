//! The SQLite driver: connection pragmas, migrations, `BEGIN IMMEDIATE`, and the statements
//! whose SQL is SQLite's own.

use chrono::NaiveDateTime;
use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::prelude::*;
use diesel::result::{ConnectionError, ConnectionResult};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use super::Backend;
use super::claim::{ClaimRequest, ClaimedExec, QueueSelection, in_claim_order};
use super::complete::OutcomeRow;
use super::driver::{Driver, MinuteCount};
use super::enqueue::{Enqueued, NewTaskExec, enqueue_body, location_of};
use super::to_completion::RunToCompletion;
use crate::State;
use crate::schedule_exec::ScheduleExecRow;
use crate::schema::schedule_execs::dsl as se;
use crate::schema::task_execs::dsl as te;

pub(super) mod watch;

const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

/// Opens a connection set up for many processes sharing one file: WAL lets readers run beside
/// the writer, `busy_timeout` makes writers queue instead of failing, and `synchronous=NORMAL`
/// is durable under WAL except for the last commits on a power loss.
pub(super) fn establish(path: &str) -> ConnectionResult<SqliteConnection> {
    let mut conn = SqliteConnection::establish(path)?;
    conn.batch_execute(
        "PRAGMA busy_timeout = 30000; PRAGMA journal_mode = WAL; \
         PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
    )
    .map_err(ConnectionError::CouldntSetupConfiguration)?;
    Ok(conn)
}

// Times are stored as `YYYY-MM-DD HH:MM:SS.ffffff` text, so the minute is a prefix of it
// (turned into seconds once per group, not per row).
const FINISHED_PER_MINUTE: &str = "SELECT CAST(strftime('%s', m || ':00') AS INTEGER) AS minute, state, n FROM \
     (SELECT substr(finished, 1, 16) AS m, state, COUNT(*) AS n FROM task_execs \
      WHERE finished >= ? AND state IN ('succeeded', 'failed') GROUP BY 1, 2)";

impl Driver for SqliteConnection {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    /// Under the write lock, so that many workers starting at once do not race.
    fn migrate(&mut self) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        self.immediate_transaction(|conn| {
            conn.run_pending_migrations(MIGRATIONS)?;
            Ok(())
        })
    }

    fn begin_write(&mut self) -> QueryResult<()> {
        AnsiTransactionManager::begin_transaction_sql(self, "BEGIN IMMEDIATE")
    }

    fn commit(&mut self) -> QueryResult<()> {
        AnsiTransactionManager::commit_transaction(self)
    }

    fn rollback(&mut self) -> QueryResult<()> {
        AnsiTransactionManager::rollback_transaction(self)
    }

    fn enqueue(&mut self, rows: &[NewTaskExec]) -> QueryResult<Vec<Enqueued>> {
        enqueue_body!(self, rows)
    }

    fn location(&mut self) -> String {
        location_of(
            self,
            "SELECT file AS location FROM pragma_database_list WHERE name = 'main'",
            "the SQLite database",
        )
    }

    /// Inside `BEGIN IMMEDIATE`, which already serialises writers: no row locks.
    fn claim(&mut self, request: &ClaimRequest<'_>) -> QueryResult<Vec<ClaimedExec>> {
        claim(self, request)
    }

    /// One statement each: SQLite runs in-process, where a statement costs microseconds and
    /// the transaction around them is the one commit.
    fn record_outcomes(&mut self, worker: &str, rows: &[OutcomeRow<'_>]) -> QueryResult<Vec<i64>> {
        let mut updated = Vec::with_capacity(rows.len());
        for row in rows {
            let count = diesel::update(
                te::task_execs
                    .find(row.id)
                    .filter(te::state.eq(State::Processing.as_str()))
                    .filter(te::worker.eq(worker)),
            )
            .set((
                te::state.eq(row.state.as_str()),
                te::result.eq(&row.result),
                te::error.eq(row.error.as_deref()),
                te::finished.eq(row.finished),
            ))
            .execute(self)?;
            if count == 1 {
                updated.push(row.id);
            }
        }
        Ok(updated)
    }

    /// The write transaction already excludes other writers.
    fn lock_schedules(&mut self, names: &[&str]) -> QueryResult<Vec<ScheduleExecRow>> {
        se::schedule_execs.filter(se::name.eq_any(names)).load(self)
    }

    fn create_schedule(
        &mut self,
        name: &str,
        last_due: Option<NaiveDateTime>,
    ) -> QueryResult<Option<ScheduleExecRow>> {
        diesel::insert_into(se::schedule_execs)
            .values(super::schedules::new_schedule_row(name, last_due))
            .on_conflict_do_nothing()
            .returning(se::schedule_execs::all_columns())
            .optional_to_completion::<ScheduleExecRow>(self)
    }

    /// Every process using the file runs on this machine: its clock is the shared one.
    fn database_now(&mut self) -> QueryResult<chrono::DateTime<chrono::Utc>> {
        Ok(chrono::Utc::now())
    }

    fn finished_per_minute(&mut self, since: NaiveDateTime) -> QueryResult<Vec<MinuteCount>> {
        diesel::sql_query(FINISHED_PER_MINUTE)
            .bind::<diesel::sql_types::Timestamp, _>(since)
            .load(self)
    }

    fn delete_expired(&mut self, now: NaiveDateTime, limit: i64) -> QueryResult<usize> {
        // julianday() reads the stored text timestamps; a TTL in days is seconds / 86400.
        diesel::sql_query(
            "DELETE FROM task_execs WHERE id IN (SELECT t.id FROM task_execs t \
             WHERE t.result_ttl IS NOT NULL AND t.finished IS NOT NULL \
             AND julianday(t.finished) + t.result_ttl / 86400.0 <= julianday(?) \
             AND NOT EXISTS (SELECT 1 FROM task_execs n WHERE n.id = t.replaced_by) \
             LIMIT ?)",
        )
        .bind::<diesel::sql_types::Timestamp, _>(now)
        .bind::<diesel::sql_types::BigInt, _>(limit)
        .execute(self)
    }
}

/// The claim, written out: SQLite's planner, without statistics, takes the index on
/// `task_name` (or `state`) for the filter and sorts every queued row for the `ORDER BY`, so
/// a claim slows with the backlog (4× at 100,000 rows). `INDEXED BY` makes it walk the
/// partial index made for the claim and stop after `limit` rows; SQLite refuses the statement
/// rather than ignore the index, so a change that made it unusable fails every claim test.
fn claim(c: &mut SqliteConnection, request: &ClaimRequest<'_>) -> QueryResult<Vec<ClaimedExec>> {
    use diesel::sql_types::{BigInt, Text, Timestamp};
    let placeholders = |n: usize| vec!["?"; n].join(", ");
    let queues = match request.queues {
        QueueSelection::All => String::new(),
        QueueSelection::Only(only) => format!(" AND queue IN ({})", placeholders(only.len())),
        QueueSelection::Except(except) if except.is_empty() => String::new(),
        QueueSelection::Except(except) => {
            format!(" AND queue NOT IN ({})", placeholders(except.len()))
        }
    };
    let sql = format!(
        "UPDATE task_execs SET state = 'processing', started = ?, worker = ? \
         WHERE id IN (SELECT id FROM task_execs INDEXED BY task_execs_claim \
         WHERE state = 'queued' AND task_name IN ({names}){queues} \
         ORDER BY priority DESC, due, id LIMIT ?) \
         RETURNING id, task_name, args, queue, priority, due, retries, retry_delay, unique_key, \
         timeout_ms, result_ttl",
        names = placeholders(request.task_names.len()),
    );
    let mut query = diesel::sql_query(sql)
        .into_boxed::<diesel::sqlite::Sqlite>()
        .bind::<Timestamp, _>(request.now.naive_utc())
        .bind::<Text, _>(request.worker.to_string());
    for name in request.task_names {
        query = query.bind::<Text, _>(*name);
    }
    match request.queues {
        QueueSelection::All => {}
        QueueSelection::Only(queues) | QueueSelection::Except(queues) => {
            for queue in queues {
                query = query.bind::<Text, _>(queue.clone());
            }
        }
    }
    let mut claimed: Vec<ClaimedExec> = query
        .bind::<BigInt, _>(i64::try_from(request.limit).unwrap_or(i64::MAX))
        .load(c)?;
    in_claim_order(&mut claimed);
    Ok(claimed)
}
