//! The SQLite driver: connection pragmas, migrations, `BEGIN IMMEDIATE`, and the statements
//! whose SQL is SQLite's own.

use chrono::NaiveDateTime;
use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::prelude::*;
use diesel::result::{ConnectionError, ConnectionResult};
use diesel::sql_types::{BigInt, Integer, Text, Timestamp};
use diesel::sqlite::Sqlite;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use super::Backend;
use super::claim::{CLAIMED_SQL, ClaimRequest, ClaimedExec, QueueSelection, in_claim_order};
use super::complete::OutcomeRow;
use super::driver::{Driver, MinuteCount, SecondCount};
use super::enqueue::{Enqueued, NewTaskExec, enqueue_body, location_of};
use super::prepared::Prepared;
use super::to_completion::RunToCompletion;
use crate::State;
use crate::schedule_exec::ScheduleExecRow;
use crate::schema::schedule_execs::dsl as se;
use crate::schema::task_execs::dsl as te;

pub(super) mod watch;
mod writers;

const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

/// Opens a connection set up for many processes sharing one file: WAL lets readers run beside
/// the writer, writers wait for the lock in turn (`writers`) instead of failing, and
/// `synchronous=NORMAL` is durable under WAL except for the last commits on a power loss.
pub(super) fn establish(path: &str) -> ConnectionResult<SqliteConnection> {
    // No `busy_timeout` below: it would replace the busy handler `writers` installs.
    let mut conn = writers::open(|| SqliteConnection::establish(path))?;
    conn.batch_execute(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
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

    fn finished_per_second(&mut self, since: NaiveDateTime) -> QueryResult<Vec<SecondCount>> {
        // Stored as text, `YYYY-MM-DD HH:MM:SS[.fff]`: its first 19 characters are the second.
        diesel::sql_query(
            "SELECT CAST(strftime('%s', s) AS INTEGER) AS second, n FROM \
             (SELECT substr(finished, 1, 19) AS s, COUNT(*) AS n FROM task_execs \
              WHERE finished >= ? GROUP BY 1)",
        )
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

/// The queued rows' queues, through the claim index: one seek per queue (a skip scan), whatever
/// the number of rows.
const QUEUED_QUEUES: &str = "WITH RECURSIVE q(queue) AS (\
     SELECT (SELECT queue FROM task_execs INDEXED BY task_execs_queued \
             WHERE state = 'queued' ORDER BY queue LIMIT 1) \
     UNION ALL \
     SELECT (SELECT t.queue FROM task_execs AS t INDEXED BY task_execs_queued \
             WHERE t.state = 'queued' AND t.queue > q.queue ORDER BY t.queue LIMIT 1) \
     FROM q WHERE q.queue IS NOT NULL) \
     SELECT queue FROM q WHERE queue IS NOT NULL";

#[derive(QueryableByName)]
struct QueuedQueue {
    #[diesel(sql_type = Text)]
    queue: String,
}

/// A row the claim may take, in claim order.
#[derive(QueryableByName)]
struct Candidate {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Integer)]
    priority: i32,
    #[diesel(sql_type = Timestamp)]
    due: NaiveDateTime,
}

/// The claim: inside `BEGIN IMMEDIATE`, which already serialises writers, so it can read then
/// write. For each served queue that has queued rows, the first `limit` rows of its range of
/// the claim index (`task_execs_queued`: queue, then claim order); the best `limit` of those
/// are claimed. Rows of queues the worker does not serve are never read, however many.
///
/// `INDEXED BY`: SQLite's planner, without statistics, prefers the index on `task_name` or
/// `state` and sorts every queued row; SQLite refuses a statement whose named index it cannot
/// use rather than ignore it, so a change that made it unusable fails every claim test.
fn claim(c: &mut SqliteConnection, request: &ClaimRequest<'_>) -> QueryResult<Vec<ClaimedExec>> {
    let queues: Vec<String> = match request.queues {
        QueueSelection::Only(only) => only.clone(),
        selection => Prepared::<Sqlite>::sql(QUEUED_QUEUES)
            .load::<QueuedQueue>(c)?
            .into_iter()
            .map(|q| q.queue)
            .filter(|q| selection.includes(q))
            .collect(),
    };
    let limit = i64::try_from(request.limit).unwrap_or(i64::MAX);
    let mut candidates = Vec::new();
    for queue in &queues {
        let mut select = Prepared::<Sqlite>::sql(
            "SELECT id, priority, due FROM task_execs INDEXED BY task_execs_queued \
             WHERE state = 'queued' AND queue = ",
        )
        .bind::<Text, _>(queue.as_str())
        .then(" AND task_name IN (");
        for (i, name) in request.task_names.iter().enumerate() {
            if i > 0 {
                select = select.then(", ");
            }
            select = select.bind::<Text, _>(*name);
        }
        candidates.extend(
            select
                .then(") ORDER BY priority DESC, due, id LIMIT ")
                .bind::<BigInt, _>(limit)
                .load::<Candidate>(c)?,
        );
    }
    if candidates.is_empty() {
        return Ok(Vec::new());
    }
    candidates.sort_by(|a, b| {
        b.priority
            .cmp(&a.priority)
            .then(a.due.cmp(&b.due))
            .then(a.id.cmp(&b.id))
    });
    candidates.truncate(request.limit);
    // One bind for any number of ids: one statement to keep prepared.
    let ids = serde_json::to_string(&candidates.iter().map(|c| c.id).collect::<Vec<_>>())
        .unwrap_or_default();
    let mut claimed: Vec<ClaimedExec> =
        Prepared::<Sqlite>::sql("UPDATE task_execs SET state = 'processing', started = ")
            .bind::<Timestamp, _>(request.now.naive_utc())
            .then(", worker = ")
            .bind::<Text, _>(request.worker)
            .then(" WHERE id IN (SELECT value FROM json_each(")
            .bind::<Text, _>(ids)
            .then(")) RETURNING ")
            .then(CLAIMED_SQL)
            .load(c)?;
    in_claim_order(&mut claimed);
    Ok(claimed)
}
