//! The MariaDB and MySQL driver: row locks that skip what another worker holds, taken by a
//! `SELECT … FOR UPDATE SKIP LOCKED` and then updated, since neither server has
//! `UPDATE … RETURNING`; ids of inserted rows from `LAST_INSERT_ID()`.
//!
//! Sessions run at `READ COMMITTED`, as PostgreSQL's do: each statement sees the newest
//! commits (the rescue's second look at a worker's status relies on it), and InnoDB takes no
//! gap locks, which at `REPEATABLE READ` make concurrent enqueuers and claimers deadlock.

use chrono::NaiveDateTime;
use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::mysql::{Mysql, MysqlConnection};
use diesel::prelude::*;
use diesel::result::{ConnectionError, ConnectionResult, DatabaseErrorKind};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use super::Backend;
use super::claim::{
    CLAIMED_COLUMNS, CLAIMED_SQL, ClaimRequest, ClaimedExec, QueueSelection, in_claim_order,
};
use super::complete::{Holder, OutcomeRow, interrupted, with_held_rows};
use super::driver::{Driver, MinuteCount, SecondCount};
use super::enqueue::{Enqueued, INSERT_BATCH, NewTaskExec, insert_unique, location_of};
use super::flows::NewFlow;
use super::to_completion::RunToCompletion;
use crate::State;
use crate::queue::QueueRow;
use crate::schedule_exec::ScheduleExecRow;
use crate::schema::schedule_execs::dsl as se;
use crate::schema::task_execs::dsl as te;

const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/mysql");

/// The oldest servers with `FOR UPDATE SKIP LOCKED`, which claiming needs.
const OLDEST_MARIADB: (u32, u32) = (10, 6);
const OLDEST_MYSQL: (u32, u32) = (8, 0);

/// Bytes of arguments per multi-row `INSERT`, under the servers' default packet limit
/// (`max_allowed_packet`, 16 MiB on MariaDB, 64 MiB on MySQL) with room for the rest.
const INSERT_BATCH_BYTES: usize = 4 << 20;

pub(super) fn establish(url: &str) -> ConnectionResult<MysqlConnection> {
    let mut conn = MysqlConnection::establish(url)?;
    let version: ServerVersion = diesel::sql_query("SELECT VERSION() AS version")
        .one_to_completion(&mut conn)
        .map_err(ConnectionError::CouldntSetupConfiguration)?;
    check_version(&version.version).map_err(ConnectionError::BadConnection)?;
    conn.batch_execute(
        "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED; \
         SET SESSION sql_mode = CONCAT(@@sql_mode, ',STRICT_ALL_TABLES')",
    )
    .map_err(ConnectionError::CouldntSetupConfiguration)?;
    Ok(conn)
}

#[derive(QueryableByName)]
struct ServerVersion {
    #[diesel(sql_type = diesel::sql_types::Text)]
    version: String,
}

/// Refuses a server without `FOR UPDATE SKIP LOCKED` (MariaDB before 10.6, MySQL before 8),
/// naming the version found and the one needed: its claims would fail with a syntax error.
fn check_version(version: &str) -> Result<(), String> {
    let mariadb = version.contains("MariaDB");
    let mut numbers = version
        .split(|c: char| !c.is_ascii_digit())
        .map(|n| n.parse::<u32>().unwrap_or(0));
    let found = (numbers.next().unwrap_or(0), numbers.next().unwrap_or(0));
    let (name, oldest) = if mariadb {
        ("MariaDB", OLDEST_MARIADB)
    } else {
        ("MySQL", OLDEST_MYSQL)
    };
    if found < oldest {
        return Err(format!(
            "the server is {name} {version}, too old for toosimple: it needs {name} {}.{} or later \
             (for FOR UPDATE SKIP LOCKED, which lets workers claim without waiting on each other)",
            oldest.0, oldest.1
        ));
    }
    Ok(())
}

/// The estimated row count of an `EXPLAIN` line: MariaDB sends it as text.
#[derive(QueryableByName)]
struct Explained {
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    rows: Option<String>,
}

#[derive(QueryableByName)]
struct DatabaseNow {
    #[diesel(sql_type = diesel::sql_types::Datetime)]
    now: NaiveDateTime,
}

#[derive(QueryableByName)]
struct Locked {
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
    locked: Option<i64>,
}

#[derive(QueryableByName)]
struct InsertedIds {
    /// The id of the first row of the last `INSERT`.
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    first: i64,
    /// The step between ids (`auto_increment_increment`, 1 unless replication sets it).
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    step: i64,
}

/// The ids of the `count` rows the connection's last `INSERT` stored. One multi-row `INSERT …
/// VALUES` is a "simple insert" to InnoDB, which allocates its ids at once, consecutive
/// (`auto_increment_increment` apart) under every `innodb_autoinc_lock_mode`.
fn inserted_ids(c: &mut MysqlConnection, count: usize) -> QueryResult<Vec<i64>> {
    let ids: InsertedIds = diesel::sql_query(
        "SELECT CAST(LAST_INSERT_ID() AS SIGNED) AS first, \
         CAST(@@auto_increment_increment AS SIGNED) AS step",
    )
    .one_to_completion(c)?;
    Ok((0..count as i64)
        .map(|i| ids.first + i * ids.step)
        .collect())
}

/// Inserts `row`, or says it clashed with a unique index (a pending duplicate, or an
/// occurrence already materialized): a failed statement leaves the transaction usable.
fn try_insert(c: &mut MysqlConnection, row: &NewTaskExec) -> QueryResult<Option<i64>> {
    match diesel::insert_into(te::task_execs).values(row).execute(c) {
        Ok(_) => Ok(inserted_ids(c, 1)?.pop()),
        Err(diesel::result::Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// The times diesel can send to these servers: it binds times as `TIMESTAMP` values, which
/// the server reads within `TIMESTAMP`'s range only (a later one arrives as NULL), whatever
/// the column's own type (`DATETIME(6)`, which holds any year).
const EARLIEST_TIME: &str = "1970-01-01 00:00:01";
const LATEST_TIME: &str = "2038-01-19 03:14:07";

/// Refuses, with its reason, a `what` time that these servers would receive as NULL.
fn storable_time(what: &str, time: NaiveDateTime) -> QueryResult<()> {
    let parse = |text| NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S");
    let (Ok(earliest), Ok(latest)) = (parse(EARLIEST_TIME), parse(LATEST_TIME)) else {
        return Ok(());
    };
    if time < earliest || time > latest {
        return Err(diesel::result::Error::QueryBuilderError(
            format!(
                "{what} {time} UTC is outside {EARLIEST_TIME} to {LATEST_TIME} UTC, the times \
                 toosimple can store on MariaDB and MySQL (diesel sends times there as TIMESTAMP \
                 values); nothing was stored"
            )
            .into(),
        ));
    }
    Ok(())
}

#[derive(QueryableByName)]
struct QueuedQueue {
    #[diesel(sql_type = diesel::sql_types::Text)]
    queue: String,
}

/// The queues that hold queued rows, less `except`'s: read from the claim index's prefix
/// (`state`, `queue`), one step per queue, however many rows.
fn queued_queues_of(
    c: &mut MysqlConnection,
    selection: &QueueSelection,
) -> QueryResult<Vec<String>> {
    let except: &[String] = match selection {
        QueueSelection::Except(except) => except,
        _ => &[],
    };
    let queues: Vec<QueuedQueue> = diesel::sql_query(
        "SELECT DISTINCT queue FROM task_execs FORCE INDEX (task_execs_queued) \
         WHERE state = 'queued'",
    )
    .load(c)?;
    Ok(queues
        .into_iter()
        .map(|q| q.queue)
        .filter(|q| !except.contains(q))
        .collect())
}

// Arithmetic on the stored UTC times, not UNIX_TIMESTAMP, which reads them in the session's
// time zone.
const FINISHED_PER_MINUTE: &str = "SELECT TIMESTAMPDIFF(MINUTE, '1970-01-01', finished) * 60 AS minute, \
     state, COUNT(*) AS n FROM task_execs WHERE finished >= ? AND state IN ('succeeded', 'failed') \
     GROUP BY 1, 2";

/// What every retention delete also asks of a row `t`: no remaining execution replaced it
/// (a chain goes from its end back), its hook, if any, has run, and it is in no flow unless it
/// is the execution that ended its flow (the rest of the flow goes with the flow, once this
/// one is gone: `Store::delete_expired_flows`).
const DELETABLE: &str = "AND NOT EXISTS (SELECT 1 FROM task_execs n WHERE n.id = t.replaced_by) \
     AND (t.hook IS NULL OR t.hook_ran IS NOT NULL) \
     AND (t.flow_id IS NULL OR EXISTS (SELECT 1 FROM flows f WHERE f.id = t.flow_id AND f.final_exec = t.id))";

impl Driver for MysqlConnection {
    fn backend(&self) -> Backend {
        Backend::Mysql
    }

    /// Under a named lock of this database (`GET_LOCK`), so that many workers starting at
    /// once on a new database do not race to create the same tables: DDL commits by itself
    /// on these servers, so a transaction would not serialise them.
    fn migrate(&mut self) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let lock: Locked = diesel::sql_query(
            "SELECT GET_LOCK(CONCAT('toosimple_migrate.', DATABASE()), 120) AS locked",
        )
        .one_to_completion(self)?;
        if lock.locked != Some(1) {
            return Err("waited 120 s for another process's migrations (GET_LOCK)".into());
        }
        let ran = self.run_pending_migrations(MIGRATIONS).map(|_| ());
        let released =
            self.batch_execute("DO RELEASE_LOCK(CONCAT('toosimple_migrate.', DATABASE()))");
        ran?;
        released?;
        Ok(())
    }

    fn begin_write(&mut self) -> QueryResult<()> {
        AnsiTransactionManager::begin_transaction(self)
    }

    fn commit(&mut self) -> QueryResult<()> {
        AnsiTransactionManager::commit_transaction(self)
    }

    fn rollback(&mut self) -> QueryResult<()> {
        AnsiTransactionManager::rollback_transaction(self)
    }

    /// In a transaction even for one row: the id comes from a second statement, and a row
    /// stored without the caller learning its id would be enqueued twice by a retry.
    fn enqueue(&mut self, rows: &[NewTaskExec]) -> QueryResult<Vec<Enqueued>> {
        for row in rows {
            storable_time("due", row.due)?;
        }
        self.transaction(|c| {
            let mut out = Vec::with_capacity(rows.len());
            let mut start = 0;
            while start < rows.len() {
                let row = &rows[start];
                if row.unique_key.is_some() || row.schedule.is_some() {
                    out.push(insert_unique!(c, row, |row| try_insert(c, row)));
                    start += 1;
                    continue;
                }
                let mut end = start;
                let mut bytes = 0;
                while end < rows.len()
                    && end - start < INSERT_BATCH
                    && (end == start || bytes + rows[end].args.len() <= INSERT_BATCH_BYTES)
                    && rows[end].unique_key.is_none()
                    && rows[end].schedule.is_none()
                {
                    bytes += rows[end].args.len();
                    end += 1;
                }
                diesel::insert_into(te::task_execs)
                    .values(&rows[start..end])
                    .execute(c)?;
                out.extend(
                    inserted_ids(c, end - start)?
                        .into_iter()
                        .map(|id| Enqueued {
                            id,
                            duplicate: false,
                        }),
                );
                start = end;
            }
            Ok(out)
        })
    }

    fn location(&mut self) -> String {
        location_of(
            self,
            "SELECT CONCAT(IF(VERSION() LIKE '%MariaDB%', 'MariaDB', 'MySQL'), ' database ', \
             DATABASE()) AS location",
            "the MySQL database",
        )
    }

    /// For each served queue, its first `limit` rows of the claim index that no other worker
    /// holds, read and locked (`FOR UPDATE SKIP LOCKED`: concurrent workers take different
    /// rows without waiting); the best `limit` of those are claimed by one `UPDATE`, in the
    /// caller's transaction, the others unlocked at commit. Rows of queues the worker does not
    /// serve are never read, however many.
    fn claim(&mut self, request: &ClaimRequest<'_>) -> QueryResult<Vec<ClaimedExec>> {
        use diesel::sql_types::{BigInt, Text};
        let placeholders = |n: usize| vec!["?"; n].join(", ");
        let queued_queues;
        let queues: &[String] = match request.queues {
            QueueSelection::Only(only) => only,
            QueueSelection::All | QueueSelection::Except(_) => {
                queued_queues = queued_queues_of(self, request.queues)?;
                &queued_queues
            }
        };
        // FORCE INDEX: walk the queue's range of the claim index in claim order and stop
        // after `limit` rows, whatever the statistics say (see the other drivers).
        let sql = format!(
            "SELECT {CLAIMED_SQL} FROM task_execs FORCE INDEX (task_execs_queued) \
             WHERE state = 'queued' AND queue = ? AND task_name IN ({names}) \
             ORDER BY priority DESC, due, id LIMIT ? FOR UPDATE SKIP LOCKED",
            names = placeholders(request.task_names.len()),
        );
        let limit = i64::try_from(request.limit).unwrap_or(i64::MAX);
        let mut claimed: Vec<ClaimedExec> = Vec::new();
        for queue in queues {
            let mut query = diesel::sql_query(&sql)
                .into_boxed::<Mysql>()
                .bind::<Text, _>(queue.as_str());
            for name in request.task_names {
                query = query.bind::<Text, _>(*name);
            }
            claimed.extend(query.bind::<BigInt, _>(limit).load::<ClaimedExec>(self)?);
        }
        in_claim_order(&mut claimed);
        claimed.truncate(request.limit);
        if claimed.is_empty() {
            return Ok(claimed);
        }
        let ids: Vec<i64> = claimed.iter().map(|c| c.id).collect();
        diesel::update(te::task_execs.filter(te::id.eq_any(&ids)))
            .set((
                te::state.eq(State::Processing.as_str()),
                te::started.eq(request.now.naive_utc()),
                te::worker.eq(request.worker),
            ))
            .execute(self)?;
        Ok(claimed)
    }

    /// `FOR UPDATE`: another worker's limited claim of the queue waits for this one's commit,
    /// then counts what it claimed (each statement sees the newest commits at `READ
    /// COMMITTED`).
    fn lock_queue(&mut self, name: &str) -> QueryResult<Option<QueueRow>> {
        use crate::schema::queues::dsl as qs;
        qs::queues
            .filter(qs::name.eq(name))
            .select(QueueRow::as_select())
            .for_update()
            .optional_to_completion(self)
    }

    /// Two statements for the whole round: the rows `worker` still holds are locked, then
    /// one `UPDATE` joined to the outcomes writes them all.
    fn record_outcomes(&mut self, worker: &str, rows: &[OutcomeRow<'_>]) -> QueryResult<Vec<i64>> {
        use diesel::sql_types::{BigInt, Datetime, Nullable, Text};
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        let held: Vec<i64> = te::task_execs
            .filter(te::id.eq_any(&ids))
            .filter(te::state.eq(State::Processing.as_str()))
            .filter(te::worker.eq(worker))
            .select(te::id)
            .for_update()
            .load(self)?;
        if held.is_empty() {
            return Ok(held);
        }
        let written: Vec<&OutcomeRow<'_>> = rows.iter().filter(|r| held.contains(&r.id)).collect();
        let values = vec![
            "SELECT ? AS id, ? AS state, ? AS result, ? AS error, ? AS finished";
            written.len()
        ]
        .join(" UNION ALL ");
        let mut query = diesel::sql_query(format!(
            "UPDATE task_execs t JOIN ({values}) v ON t.id = v.id \
             SET t.state = v.state, t.result = v.result, t.error = v.error, \
             t.finished = v.finished"
        ))
        .into_boxed::<Mysql>();
        for row in written {
            query = query
                .bind::<BigInt, _>(row.id)
                .bind::<Text, _>(row.state.as_str())
                .bind::<Nullable<Text>, _>(row.result.clone())
                .bind::<Nullable<Text>, _>(row.error.as_deref().map(str::to_string))
                .bind::<Datetime, _>(row.finished);
        }
        query.execute(self)?;
        Ok(held)
    }

    /// `FOR UPDATE SKIP LOCKED`: a schedule another worker is materializing is left to it.
    fn lock_schedules(&mut self, names: &[&str]) -> QueryResult<Vec<ScheduleExecRow>> {
        se::schedule_execs
            .filter(se::name.eq_any(names))
            .for_update()
            .skip_locked()
            .load(self)
    }

    /// The unique name decides: an insert that clashes waits for the other worker's
    /// transaction, then finds its row there.
    fn create_schedule(
        &mut self,
        name: &str,
        last_due: Option<NaiveDateTime>,
    ) -> QueryResult<Option<ScheduleExecRow>> {
        match diesel::insert_into(se::schedule_execs)
            .values(super::schedules::new_schedule_row(name, last_due))
            .execute(self)
        {
            Ok(_) => se::schedule_execs
                .filter(se::name.eq(name))
                .optional_to_completion(self),
            Err(diesel::result::Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// The server's clock, shared by workers on every machine.
    fn database_now(&mut self) -> QueryResult<chrono::DateTime<chrono::Utc>> {
        diesel::sql_query("SELECT UTC_TIMESTAMP(6) AS now")
            .one_to_completion::<DatabaseNow>(self)
            .map(|row| row.now.and_utc())
    }

    /// The optimizer's estimates (`EXPLAIN`'s rows, from dives into the index on
    /// `(state, id)`): counting a million entries of it takes a fifth of a second.
    fn count_big_states(&mut self, states: &[&str], _others: i64) -> QueryResult<Vec<(i64, bool)>> {
        states
            .iter()
            .map(|state| {
                let rows = diesel::sql_query(format!(
                    "EXPLAIN SELECT 1 FROM task_execs WHERE state = '{state}'"
                ))
                .load::<Explained>(self)?
                .into_iter()
                .find_map(|row| row.rows.and_then(|n| n.trim().parse::<i64>().ok()))
                .unwrap_or(0);
                Ok((rows, false))
            })
            .collect()
    }

    fn finished_per_minute(&mut self, since: NaiveDateTime) -> QueryResult<Vec<MinuteCount>> {
        diesel::sql_query(FINISHED_PER_MINUTE)
            .bind::<diesel::sql_types::Datetime, _>(since)
            .load(self)
    }

    fn finished_per_second(&mut self, since: NaiveDateTime) -> QueryResult<Vec<SecondCount>> {
        diesel::sql_query(
            "SELECT TIMESTAMPDIFF(SECOND, '1970-01-01', finished) AS second, COUNT(*) AS n \
             FROM task_execs WHERE finished >= ? GROUP BY 1",
        )
        .bind::<diesel::sql_types::Datetime, _>(since)
        .load(self)
    }

    /// The update, then a read of the request: no `UPDATE … RETURNING` here. A request
    /// written between the two is read at the next beat.
    fn beat(
        &mut self,
        label: &str,
        now: NaiveDateTime,
        handled: i64,
    ) -> QueryResult<Vec<Option<String>>> {
        use crate::schema::worker_statuses::dsl as ws;
        let updated = diesel::update(ws::worker_statuses.filter(ws::label.eq(label)))
            .set((ws::last_tick.eq(now), ws::handled.eq(handled)))
            .execute(self)?;
        if updated == 0 {
            return Ok(Vec::new());
        }
        ws::worker_statuses
            .filter(ws::label.eq(label))
            .select(ws::stop_request)
            .load(self)
    }

    fn delete_expired(&mut self, now: NaiveDateTime, limit: i64) -> QueryResult<usize> {
        // A DELETE may not read its own table in a subquery, nor `IN` take a LIMIT: the
        // derived table is materialized first.
        diesel::sql_query(format!(
            "DELETE FROM task_execs WHERE id IN (SELECT id FROM (SELECT t.id FROM task_execs t \
             WHERE t.result_ttl IS NOT NULL AND t.result_ttl >= 0 AND t.finished IS NOT NULL \
             AND t.finished + INTERVAL t.result_ttl SECOND <= ? {DELETABLE} \
             LIMIT ?) AS expiring)"
        ))
        .bind::<diesel::sql_types::Datetime, _>(now)
        .bind::<diesel::sql_types::BigInt, _>(limit)
        .execute(self)
    }

    fn delete_expired_by_default(
        &mut self,
        cutoff: NaiveDateTime,
        limit: i64,
    ) -> QueryResult<usize> {
        diesel::sql_query(format!(
            "DELETE FROM task_execs WHERE id IN (SELECT id FROM (SELECT t.id FROM task_execs t \
             WHERE t.finished IS NOT NULL AND t.finished <= ? AND t.result_ttl IS NULL \
             {DELETABLE} LIMIT ?) AS expired)"
        ))
        .bind::<diesel::sql_types::Datetime, _>(cutoff)
        .bind::<diesel::sql_types::BigInt, _>(limit)
        .execute(self)
    }

    fn insert_flow(&mut self, row: &NewFlow) -> QueryResult<i64> {
        use crate::schema::flows::dsl as f;
        diesel::insert_into(f::flows).values(row).execute(self)?;
        Ok(inserted_ids(self, 1)?[0])
    }

    fn delete_over_save_limit(&mut self, keep: i64, limit: i64) -> QueryResult<usize> {
        // The `keep`th newest success first (MySQL takes no LIMIT inside `IN`, and no subquery
        // of the table a DELETE changes).
        let newest_kept: Option<i64> = te::task_execs
            .select(te::id)
            .filter(te::state.eq(State::Succeeded.as_str()))
            .order(te::id.desc())
            .offset(keep - 1)
            .limit(1)
            .optional_to_completion(self)?;
        let Some(newest_kept) = newest_kept else {
            return Ok(0);
        };
        diesel::sql_query(format!(
            "DELETE FROM task_execs WHERE id IN (SELECT id FROM (SELECT t.id FROM task_execs t \
             WHERE t.state = 'succeeded' AND t.result_ttl IS NULL AND t.id < ? \
             AND NOT EXISTS (SELECT 1 FROM task_execs p WHERE p.replaced_by = t.id) \
             {DELETABLE} LIMIT ?) AS surplus)"
        ))
        .bind::<diesel::sql_types::BigInt, _>(newest_kept)
        .bind::<diesel::sql_types::BigInt, _>(limit)
        .execute(self)
    }

    /// A locking read, then the update: no `UPDATE … RETURNING` here.
    fn mark_hooks_taken(&mut self, ids: &[i64], now: NaiveDateTime) -> QueryResult<Vec<i64>> {
        let untaken: Vec<i64> = te::task_execs
            .select(te::id)
            .filter(te::id.eq_any(ids))
            .filter(te::hook_ran.is_null())
            .for_update()
            .load(self)?;
        if !untaken.is_empty() {
            diesel::update(te::task_execs.filter(te::id.eq_any(&untaken)))
                .set(te::hook_ran.eq(now))
                .execute(self)?;
        }
        Ok(untaken)
    }

    /// A locking read, then the update: no `UPDATE … RETURNING` here.
    fn claim_ids(
        &mut self,
        ids: &[i64],
        worker: &str,
        now: NaiveDateTime,
    ) -> QueryResult<Vec<ClaimedExec>> {
        let queued: Vec<ClaimedExec> = te::task_execs
            .select(CLAIMED_COLUMNS)
            .filter(te::id.eq_any(ids))
            .filter(te::state.eq(State::Queued.as_str()))
            .for_update()
            .load(self)?;
        if !queued.is_empty() {
            diesel::update(te::task_execs.filter(te::id.eq_any(queued.iter().map(|q| q.id))))
                .set((
                    te::state.eq(State::Processing.as_str()),
                    te::started.eq(now),
                    te::worker.eq(worker),
                ))
                .execute(self)?;
        }
        Ok(queued)
    }

    /// Reads and locks the rows, then interrupts them: no `UPDATE … RETURNING` here.
    fn interrupt(
        &mut self,
        holder: &Holder<'_>,
        reason: &str,
        now: NaiveDateTime,
    ) -> QueryResult<Vec<ClaimedExec>> {
        let rows: Vec<ClaimedExec> = with_held_rows!(holder, |held| held
            .select(CLAIMED_COLUMNS)
            .for_update()
            .load(self))?;
        if rows.is_empty() {
            return Ok(rows);
        }
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        diesel::update(te::task_execs.filter(te::id.eq_any(&ids)))
            .set(interrupted(reason, now))
            .execute(self)?;
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::{check_version, storable_time};

    #[test]
    fn times_past_2038_are_refused_by_name() {
        let at = |text| chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S").unwrap();
        assert!(storable_time("due", at("2038-01-19 03:14:07")).is_ok());
        assert!(storable_time("due", at("1970-01-01 00:00:01")).is_ok());
        let late = storable_time("due", at("2100-01-01 00:00:00"))
            .unwrap_err()
            .to_string();
        assert!(
            late.contains("due 2100-01-01 00:00:00 UTC is outside")
                && late.contains("nothing was stored"),
            "{late}"
        );
        assert!(storable_time("due", at("1969-12-31 23:59:59")).is_err());
    }

    #[test]
    fn servers_without_skip_locked_are_refused_by_name() {
        assert!(check_version("10.11.19-MariaDB-0+deb12u1").is_ok());
        assert!(check_version("10.6.0-MariaDB").is_ok());
        assert!(check_version("11.4.2-MariaDB").is_ok());
        assert!(check_version("8.0.36").is_ok());
        assert!(check_version("9.1.0-commercial").is_ok());
        let old = check_version("10.5.23-MariaDB-log").unwrap_err();
        assert!(old.contains("MariaDB 10.5.23-MariaDB-log"), "{old}");
        assert!(old.contains("needs MariaDB 10.6 or later"), "{old}");
        let old = check_version("5.7.44").unwrap_err();
        assert!(old.contains("needs MySQL 8.0 or later"), "{old}");
    }
}
