//! The SQLite driver: connection pragmas, migrations, `BEGIN IMMEDIATE`, and the statements
//! whose SQL is SQLite's own.

use chrono::NaiveDateTime;
use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::prelude::*;
use diesel::result::{ConnectionError, ConnectionResult};
use diesel::sql_types::{BigInt, Integer, Text};
use diesel::sqlite::Sqlite;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use super::Backend;
use super::claim::{
    CLAIMED_COLUMNS, CLAIMED_SQL, ClaimRequest, ClaimedExec, ClaimedSqlType, QueueSelection,
    in_claim_order,
};
use super::complete::{Holder, OutcomeRow, interrupted, with_held_rows};
use super::driver::{Driver, MinuteCount, SecondCount};
use super::enqueue::{Enqueued, NewTaskExec, enqueue_body, location_of};
use super::flows::NewFlow;
use super::hooks::mark_hooks_taken_returning;
use super::inline::claim_ids_returning;
use super::prepared::Prepared;
use super::to_completion::RunToCompletion;
use crate::queue::QueueRow;
use crate::schedule_exec::ScheduleExecRow;
use crate::schema::schedule_execs::dsl as se;

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
/// `+state`: without statistics SQLite's planner prefers the index on `(state, id)`, which
/// walks every succeeded row (0.2 s per million); the unary plus leaves it the index on
/// `finished`, which reads the last hour's rows only.
const FINISHED_PER_MINUTE: &str = "SELECT CAST(strftime('%s', m || ':00') AS INTEGER) AS minute, state, n FROM \
     (SELECT substr(finished, 1, 16) AS m, state, COUNT(*) AS n FROM task_execs \
      WHERE finished >= ? AND +state IN ('succeeded', 'failed') GROUP BY 1, 2)";

/// One `COUNT(*)`.
#[derive(QueryableByName)]
struct Total {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// What every retention delete also asks of a row `t`: no remaining execution replaced it
/// (a chain goes from its end back), its hook, if any, has run, and it is in no flow unless it
/// is the execution that ended its flow (the rest of the flow goes with the flow, once this
/// one is gone: `Store::delete_expired_flows`).
const DELETABLE: &str = "AND NOT EXISTS (SELECT 1 FROM task_execs n WHERE n.id = t.replaced_by) \
     AND (t.hook IS NULL OR t.hook_ran IS NOT NULL) \
     AND (t.flow_id IS NULL OR EXISTS (SELECT 1 FROM flows f WHERE f.id = t.flow_id AND f.final_exec = t.id))";

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

    /// The write transaction (`BEGIN IMMEDIATE`) already excludes other writers.
    fn lock_queue(&mut self, name: &str) -> QueryResult<Option<QueueRow>> {
        use crate::schema::queues::dsl as qs;
        qs::queues
            .filter(qs::name.eq(name))
            .select(QueueRow::as_select())
            .optional_to_completion(self)
    }

    /// One statement for the round: the outcomes go in as one JSON array (one bound value,
    /// so one statement text to keep prepared whatever their number).
    fn record_outcomes(&mut self, worker: &str, rows: &[OutcomeRow<'_>]) -> QueryResult<Vec<i64>> {
        struct RecordOutcomes;
        /// One outcome as the statement reads it: id, state, result, error, finished.
        type Written<'r> = (i64, &'r str, Option<&'r str>, Option<&'r str>, String);
        let outcomes: Vec<Written<'_>> = rows
            .iter()
            .map(|row| {
                (
                    row.id,
                    row.state.as_str(),
                    row.result.as_deref(),
                    row.error.as_deref(),
                    time_text(&row.finished),
                )
            })
            .collect();
        let outcomes = serde_json::to_string(&outcomes)
            .map_err(|e| diesel::result::Error::SerializationError(Box::new(e)))?;
        Prepared::<Sqlite, RecordOutcomes, BigInt>::sql(
            "UPDATE task_execs SET state = o.state, result = o.result, error = o.error, \
             finished = o.finished FROM (SELECT value ->> 0 AS id, value ->> 1 AS state, \
             value ->> 2 AS result, value ->> 3 AS error, value ->> 4 AS finished \
             FROM json_each(",
        )
        .bind::<Text, _>(outcomes)
        // `+`: not through the index of running rows by worker (every row the worker holds,
        // each matched against the whole array), but each outcome's row by its id.
        .then(
            ")) AS o WHERE task_execs.id = o.id AND +task_execs.state = 'processing' \
             AND +task_execs.worker = ",
        )
        .bind::<Text, _>(worker)
        .then(" RETURNING task_execs.id")
        .load(self)
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

    /// Exact: each state counted through the index on `(state, id)` (tens of milliseconds per
    /// million entries) but one, the rest of the table, whose `COUNT(*)` SQLite reads from its
    /// smallest index page by page (a dozen milliseconds per million rows). That one is
    /// `succeeded` when it is among them, the biggest state of most histories.
    fn count_big_states(&mut self, states: &[&str], others: i64) -> QueryResult<Vec<(i64, bool)>> {
        let rest = states.iter().position(|s| *s == "succeeded").unwrap_or(0);
        let mut counts = vec![(0, true); states.len()];
        let mut counted = others;
        for (i, state) in states.iter().enumerate().filter(|(i, _)| *i != rest) {
            let n = diesel::sql_query(format!(
                "SELECT COUNT(*) AS n FROM task_execs WHERE state = '{state}'"
            ))
            .one_to_completion::<Total>(self)?
            .n;
            counts[i] = (n, true);
            counted += n;
        }
        if !states.is_empty() {
            let all = diesel::sql_query("SELECT COUNT(*) AS n FROM task_execs")
                .one_to_completion::<Total>(self)?
                .n;
            counts[rest] = (all - counted, true);
        }
        Ok(counts)
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
        diesel::sql_query(format!(
            "DELETE FROM task_execs WHERE id IN (SELECT t.id FROM task_execs t \
             WHERE t.result_ttl IS NOT NULL AND t.result_ttl >= 0 AND t.finished IS NOT NULL \
             AND julianday(t.finished) + t.result_ttl / 86400.0 <= julianday(?) {DELETABLE} \
             LIMIT ?)"
        ))
        .bind::<diesel::sql_types::Timestamp, _>(now)
        .bind::<diesel::sql_types::BigInt, _>(limit)
        .execute(self)
    }

    /// One `UPDATE … RETURNING`.
    fn interrupt(
        &mut self,
        holder: &Holder<'_>,
        reason: &str,
        now: NaiveDateTime,
    ) -> QueryResult<Vec<ClaimedExec>> {
        with_held_rows!(holder, |held| diesel::update(held)
            .set(interrupted(reason, now))
            .returning(CLAIMED_COLUMNS)
            .get_results(self))
    }

    /// One statement: the beat and the request read together.
    fn beat(
        &mut self,
        label: &str,
        now: NaiveDateTime,
        handled: i64,
    ) -> QueryResult<Vec<Option<String>>> {
        use crate::schema::worker_statuses::dsl as ws;
        diesel::update(ws::worker_statuses.filter(ws::label.eq(label)))
            .set((ws::last_tick.eq(now), ws::handled.eq(handled)))
            .returning(ws::stop_request)
            .load(self)
    }

    fn mark_hooks_taken(&mut self, ids: &[i64], now: NaiveDateTime) -> QueryResult<Vec<i64>> {
        mark_hooks_taken_returning!(self, ids, now)
    }

    fn claim_ids(
        &mut self,
        ids: &[i64],
        worker: &str,
        now: NaiveDateTime,
    ) -> QueryResult<Vec<ClaimedExec>> {
        claim_ids_returning!(self, ids, worker, now)
    }

    fn delete_expired_by_default(
        &mut self,
        cutoff: NaiveDateTime,
        limit: i64,
    ) -> QueryResult<usize> {
        diesel::sql_query(format!(
            "DELETE FROM task_execs WHERE id IN (SELECT t.id FROM task_execs t \
             WHERE t.finished IS NOT NULL AND t.finished <= ? AND t.result_ttl IS NULL \
             {DELETABLE} LIMIT ?)"
        ))
        .bind::<diesel::sql_types::Timestamp, _>(cutoff)
        .bind::<diesel::sql_types::BigInt, _>(limit)
        .execute(self)
    }

    fn insert_flow(&mut self, row: &NewFlow) -> QueryResult<i64> {
        use crate::schema::flows::dsl as f;
        diesel::insert_into(f::flows)
            .values(row)
            .returning(f::id)
            .one_to_completion(self)
    }

    fn delete_over_save_limit(&mut self, keep: i64, limit: i64) -> QueryResult<usize> {
        diesel::sql_query(format!(
            "DELETE FROM task_execs WHERE id IN (SELECT t.id FROM task_execs t \
             WHERE t.state = 'succeeded' AND t.result_ttl IS NULL \
             AND t.id < (SELECT s.id FROM task_execs s WHERE s.state = 'succeeded' \
                         ORDER BY s.id DESC LIMIT 1 OFFSET ?) \
             AND NOT EXISTS (SELECT 1 FROM task_execs p WHERE p.replaced_by = t.id) \
             {DELETABLE} LIMIT ?)"
        ))
        .bind::<diesel::sql_types::BigInt, _>(keep - 1)
        .bind::<diesel::sql_types::BigInt, _>(limit)
        .execute(self)
    }
}

/// A time as SQLite stores it here: the text diesel writes for a `Timestamp`
/// (`%F %T%.f`: `2026-12-07 10:00:00.250`), which the claim and the admin compare and sort as
/// text, written without chrono's format parser (a tenth of a short task's recording).
pub(super) fn time_text(time: &NaiveDateTime) -> String {
    use chrono::{Datelike, Timelike};
    use std::fmt::Write;
    let nanos = time.nanosecond();
    if !(0..=9999).contains(&time.year()) || nanos >= 1_000_000_000 {
        // Years of other widths and leap seconds: chrono's own rules.
        return time.format("%F %T%.f").to_string();
    }
    let mut text = String::with_capacity(29);
    let _ = write!(
        text,
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        time.year(),
        time.month(),
        time.day(),
        time.hour(),
        time.minute(),
        time.second()
    );
    let _ = match nanos {
        0 => Ok(()),
        n if n % 1_000_000 == 0 => write!(text, ".{:03}", n / 1_000_000),
        n if n % 1_000 == 0 => write!(text, ".{:06}", n / 1_000),
        n => write!(text, ".{n:09}"),
    };
    text
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

/// The first rows of one queue's range of the claim index, of the tasks named in a JSON array.
const QUEUE_HEAD: &str = "SELECT id FROM task_execs INDEXED BY task_execs_queued \
     WHERE state = 'queued' AND queue = ";
const OF_TASKS: &str = " AND task_name IN (SELECT value FROM json_each(";
const IN_CLAIM_ORDER: &str = ")) ORDER BY priority DESC, due, id LIMIT ";

/// The claim: inside `BEGIN IMMEDIATE`, which already serialises writers, so it can read then
/// write. For each served queue that has queued rows, the first `limit` rows of its range of
/// the claim index (`task_execs_queued`: queue, then claim order); the best `limit` of those
/// are claimed. Rows of queues the worker does not serve are never read, however many.
///
/// `INDEXED BY`: SQLite's planner, without statistics, prefers the index on `task_name` or
/// `state` and sorts every queued row; SQLite refuses a statement whose named index it cannot
/// use rather than ignore it, so a change that made it unusable fails every claim test.
fn claim(c: &mut SqliteConnection, request: &ClaimRequest<'_>) -> QueryResult<Vec<ClaimedExec>> {
    struct QueuedQueues;
    struct ClaimOneQueue;
    struct QueueCandidates;
    struct ClaimIds;
    let queues: Vec<String> = match request.queues {
        QueueSelection::Only(only) => only.clone(),
        selection => Prepared::<Sqlite, QueuedQueues, Text>::sql(QUEUED_QUEUES)
            .load::<String>(c)?
            .into_iter()
            .filter(|q| selection.includes(q))
            .collect(),
    };
    let limit = i64::try_from(request.limit).unwrap_or(i64::MAX);
    let names = serde_json::to_string(request.task_names)
        .map_err(|e| diesel::result::Error::SerializationError(Box::new(e)))?;
    let mut claimed: Vec<ClaimedExec> = match queues.as_slice() {
        [] => return Ok(Vec::new()),
        // One queue (most workers): its head is claimed in the same statement.
        [queue] => claiming::<ClaimOneQueue>(request)
            .then(" WHERE id IN (")
            .then(QUEUE_HEAD)
            .bind::<Text, _>(queue.as_str())
            .then(OF_TASKS)
            .bind::<Text, _>(names.as_str())
            .then(IN_CLAIM_ORDER)
            .bind::<BigInt, _>(limit)
            .then(") RETURNING ")
            .then(CLAIMED_SQL)
            .load(c)?,
        // Several: the best of their heads, merged here.
        queues => {
            let mut candidates: Vec<(i32, String, i64)> = Vec::new();
            for queue in queues {
                candidates.extend(
                    Prepared::<Sqlite, QueueCandidates, (Integer, Text, BigInt)>::sql(
                        "SELECT priority, due, id FROM (",
                    )
                    .then(QUEUE_HEAD)
                    .bind::<Text, _>(queue.as_str())
                    .then(OF_TASKS)
                    .bind::<Text, _>(names.as_str())
                    .then(IN_CLAIM_ORDER)
                    .bind::<BigInt, _>(limit)
                    .then(") AS head JOIN task_execs USING (id)")
                    .load::<(i32, String, i64)>(c)?,
                );
            }
            // Claim order; stored times compare as their text.
            candidates.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
            candidates.truncate(request.limit);
            if candidates.is_empty() {
                return Ok(Vec::new());
            }
            let ids = serde_json::to_string(&candidates.iter().map(|c| c.2).collect::<Vec<_>>())
                .map_err(|e| diesel::result::Error::SerializationError(Box::new(e)))?;
            claiming::<ClaimIds>(request)
                .then(" WHERE id IN (SELECT value FROM json_each(")
                .bind::<Text, _>(ids)
                .then(")) RETURNING ")
                .then(CLAIMED_SQL)
                .load(c)?
        }
    };
    in_claim_order(&mut claimed);
    Ok(claimed)
}

/// The start of a claim's `UPDATE`, by `request.worker` at `request.now`.
fn claiming<'a, K>(request: &'a ClaimRequest<'_>) -> Prepared<'a, Sqlite, K, ClaimedSqlType> {
    Prepared::sql("UPDATE task_execs SET state = 'processing', started = ")
        .bind::<Text, _>(time_text(&request.now.naive_utc()))
        .then(", worker = ")
        .bind::<Text, _>(request.worker)
}

#[cfg(test)]
mod time_text_tests {
    use super::time_text;
    use chrono::{DateTime, NaiveDateTime};

    /// The text must be diesel's to the character: stored times are compared as text.
    #[test]
    fn time_text_is_what_diesel_writes() {
        let samples = [
            0_i64,
            1_765_000_000_000_000_000,
            1_765_000_000_250_000_000,
            1_765_000_000_250_100_000,
            1_765_000_000_250_100_001,
            1_765_000_000_000_001_000,
            i64::MAX,
        ];
        for nanos in samples {
            let time: NaiveDateTime = DateTime::from_timestamp_nanos(nanos).naive_utc();
            assert_eq!(
                time_text(&time),
                time.format("%F %T%.f").to_string(),
                "{nanos}"
            );
        }
        let mut nanos = 1_700_000_000_000_000_007_i64;
        for _ in 0..10_000 {
            nanos = nanos
                .wrapping_mul(6_364_136_223_846_793_005)
                .rem_euclid(4_000_000_000_000_000_000);
            let time = DateTime::from_timestamp_nanos(nanos).naive_utc();
            assert_eq!(
                time_text(&time),
                time.format("%F %T%.f").to_string(),
                "{nanos}"
            );
            let micros = DateTime::from_timestamp_micros(nanos / 1000)
                .unwrap()
                .naive_utc();
            assert_eq!(time_text(&micros), micros.format("%F %T%.f").to_string());
        }
    }
}
