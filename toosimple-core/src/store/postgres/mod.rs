//! The PostgreSQL driver: migrations serialised across processes, row locks that skip what
//! another worker holds, and outcomes recorded in one statement.

pub(super) mod listen;

use chrono::NaiveDateTime;
use diesel::connection::{AnsiTransactionManager, TransactionManager};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::result::ConnectionResult;
use diesel::sql_types::{Array, BigInt, Text, Timestamp};
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
use crate::schema::task_execs::dsl as te;

const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// An arbitrary constant naming toosimple's migration lock among the server's advisory locks.
const MIGRATION_LOCK: i64 = 0x746f_6f73_696d_706c;

/// Connects to `url`; `pooled` when it reaches the server through a transaction-pooling proxy.
///
/// Through such a proxy each transaction may run on another server session: named prepared
/// statements (diesel's cache, `__diesel_stmt_N`) would be missing or already there, so
/// every statement is sent with its text, parsed, bound and run in one message (measured in
/// the README: the cost is the server parsing each statement again); and session settings
/// would land on whichever session ran them, so none is made (the proxy's own timeouts
/// guard its sessions instead).
pub(super) fn establish(url: &str, pooled: bool) -> ConnectionResult<PgConnection> {
    let mut conn = PgConnection::establish(&with_keepalives(url)).map_err(tls_hint)?;
    if pooled {
        conn.set_prepared_statement_cache_size(diesel::connection::CacheSize::Disabled);
        return Ok(conn);
    }
    // The server's side of the same guard: a session whose client vanished behind a partition
    // (its goodbye lost) would hold its transaction's row locks until the server's own
    // keepalive, two hours by default, and every worker's claim and rescue would wait on them.
    // Our transactions last milliseconds: one idle for a minute has lost its client.
    diesel::connection::SimpleConnection::batch_execute(
        &mut conn,
        "SET tcp_keepalives_idle = 10; SET tcp_keepalives_interval = 3; \
         SET tcp_keepalives_count = 3; SET idle_in_transaction_session_timeout = '60s'",
    )
    .map_err(|e| diesel::ConnectionError::BadConnection(e.to_string()))?;
    Ok(conn)
}

/// The URL the worker's `LISTEN` connects to: the store's own, unless it is pooled, where a
/// `LISTEN` would hold a proxy session only for its own statement; then
/// `TOOSIMPLE_LISTEN_URL` (a direct URL to the same database), or none (polling).
pub(super) fn listen_url(url: &str, pooled: bool) -> Option<String> {
    if !pooled {
        return Some(url.to_string());
    }
    std::env::var(super::LISTEN_URL_ENV)
        .ok()
        .filter(|direct| !direct.is_empty())
}

/// See `driver::describe_wakeups`.
pub(super) fn describe_wakeups(url: &str, pooled: bool) -> String {
    match listen_url(url, pooled) {
        Some(listen) if pooled => format!(
            "LISTEN on {} ({}, since the store's URL is pooled)",
            super::url::mask(&listen),
            super::LISTEN_URL_ENV
        ),
        Some(_) => "LISTEN on the store's URL".to_string(),
        None => format!(
            "polling at each tick: the store's URL is pooled (pgbouncer=true), where LISTEN \
             cannot hold; set {} to a direct URL of the same database for instant wake-ups",
            super::LISTEN_URL_ENV
        ),
    }
}

/// libpq's words when a URL asks for TLS (`sslmode=require`, `verify-full`) and this build's
/// libpq has none.
const NO_TLS_IN_LIBPQ: &str = "SSL support is not compiled in";

/// Says how to get TLS when libpq was built without it: libpq's message names neither
/// toosimple nor the feature.
fn tls_hint(error: diesel::ConnectionError) -> diesel::ConnectionError {
    match error {
        diesel::ConnectionError::BadConnection(message) if message.contains(NO_TLS_IN_LIBPQ) => {
            diesel::ConnectionError::BadConnection(format!(
                "{}: this build of toosimple has no TLS for PostgreSQL; enable the `tls` feature \
                 of toosimple-core (on by default: `default-features = false` turned it off), \
                 or connect with `sslmode=disable` on a trusted network",
                message.trim_end()
            ))
        }
        other => other,
    }
}

/// TCP keepalives for a connection whose URL does not choose them: a worker waiting for a
/// reply from a server that went away behind a network partition (restarted while the link
/// was down, its goodbye lost) would otherwise wait for ever, since a socket that only reads
/// never learns its peer is gone. Probes after 10 s idle, every 3 s, 3 tries: a dead peer is
/// noticed within about 20 s, and the worker's outage handling takes over. Sent data left
/// unacknowledged for 20 s closes the connection too (`tcp_user_timeout`).
fn with_keepalives(url: &str) -> String {
    const DEFAULTS: [(&str, &str); 5] = [
        ("keepalives", "1"),
        ("keepalives_idle", "10"),
        ("keepalives_interval", "3"),
        ("keepalives_count", "3"),
        // Data sent but never acknowledged (the link went down mid-query): closed after 20 s.
        ("tcp_user_timeout", "20000"),
    ];
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let chosen: Vec<&str> = query
        .split('&')
        .filter_map(|pair| pair.split('=').next())
        .collect();
    let mut params: Vec<String> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect();
    for (name, value) in DEFAULTS {
        if !chosen.contains(&name) {
            params.push(format!("{name}={value}"));
        }
    }
    format!("{base}?{}", params.join("&"))
}

#[cfg(test)]
mod tls_hint_tests {
    use super::tls_hint;
    use diesel::ConnectionError;

    /// What a libpq built without OpenSSL answers (seen from a build without the `tls`
    /// feature), which names neither toosimple nor the feature.
    #[test]
    fn a_libpq_without_tls_names_the_feature() {
        let libpq = "sslmode value \"require\" invalid when SSL support is not compiled in\n";
        let ConnectionError::BadConnection(message) =
            tls_hint(ConnectionError::BadConnection(libpq.into()))
        else {
            panic!("still a connection error");
        };
        assert!(message.starts_with(libpq.trim_end()), "{message}");
        assert!(
            message.contains("enable the `tls` feature of toosimple-core"),
            "{message}"
        );
        let other = tls_hint(ConnectionError::BadConnection("refused".into()));
        assert_eq!(other.to_string(), "refused");
    }
}

#[cfg(test)]
mod keepalive_tests {
    use super::with_keepalives;

    #[test]
    fn keepalives_are_added_unless_the_url_chooses_them() {
        assert_eq!(
            with_keepalives("postgres://u@h/db"),
            "postgres://u@h/db?keepalives=1&keepalives_idle=10&keepalives_interval=3&keepalives_count=3&tcp_user_timeout=20000"
        );
        assert_eq!(
            with_keepalives("postgres://u@h/db?sslmode=disable&keepalives_idle=60"),
            "postgres://u@h/db?sslmode=disable&keepalives_idle=60&keepalives=1&keepalives_interval=3&keepalives_count=3&tcp_user_timeout=20000"
        );
    }
}

#[derive(QueryableByName)]
struct DatabaseNow {
    #[diesel(sql_type = diesel::sql_types::Timestamptz)]
    now: chrono::DateTime<chrono::Utc>,
}

/// What `EXPLAIN (FORMAT JSON)` returns: one JSON text.
#[derive(QueryableByName)]
struct Explained {
    #[diesel(sql_type = diesel::sql_types::Text, column_name = "QUERY PLAN")]
    plan: String,
}

const FINISHED_PER_MINUTE: &str = "SELECT CAST(EXTRACT(EPOCH FROM date_trunc('minute', finished)) AS BIGINT) AS minute, \
     state, COUNT(*) AS n FROM task_execs WHERE finished >= $1 AND state IN ('succeeded', 'failed') \
     GROUP BY 1, 2";

/// What every retention delete also asks of a row `t`: no remaining execution replaced it
/// (a chain goes from its end back), its hook, if any, has run, and it is in no flow unless it
/// is the execution that ended its flow (the rest of the flow goes with the flow, once this
/// one is gone: `Store::delete_expired_flows`).
const DELETABLE: &str = "AND NOT EXISTS (SELECT 1 FROM task_execs n WHERE n.id = t.replaced_by) \
     AND (t.hook IS NULL OR t.hook_ran IS NOT NULL) \
     AND (t.flow_id IS NULL OR EXISTS (SELECT 1 FROM flows f WHERE f.id = t.flow_id AND f.final_exec = t.id))";

impl Driver for PgConnection {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    /// Under an advisory lock, so that many workers starting at once on a new database do
    /// not race to create the same tables.
    fn migrate(&mut self) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        self.transaction(|conn| {
            diesel::sql_query(format!("SELECT pg_advisory_xact_lock({MIGRATION_LOCK})"))
                .execute(conn)?;
            conn.run_pending_migrations(MIGRATIONS)?;
            Ok(())
        })
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

    fn enqueue(&mut self, rows: &[NewTaskExec]) -> QueryResult<Vec<Enqueued>> {
        if rows.len() >= COPY_FROM_ROWS
            && rows
                .iter()
                .all(|r| r.unique_key.is_none() && r.schedule.is_none())
        {
            return self.transaction(|c| copy_rows(c, rows));
        }
        enqueue_body!(self, rows)
    }

    fn location(&mut self) -> String {
        location_of(
            self,
            "SELECT 'PostgreSQL database ' || current_database() AS location",
            "the PostgreSQL database",
        )
    }

    /// `FOR UPDATE SKIP LOCKED`: concurrent workers take different rows without waiting.
    fn claim(&mut self, request: &ClaimRequest<'_>) -> QueryResult<Vec<ClaimedExec>> {
        // Queue tables churn faster than autovacuum analyzes them: with statistics taken
        // when the table was small, the planner bitmap-scans every queued row and sorts them
        // (37-46 ms a claim beside 200,000 queued rows, against 0.8 ms). Without sorts and
        // bitmaps, the plan left walks each queue's range of the claim index in order and
        // stops at the limit. The merge of the queues' rows must still sort, which
        // `enable_sort = off` prices so high that the server would compile the statement
        // (JIT, tens of milliseconds) at every claim: no JIT either. Local to the round's
        // transaction.
        diesel::connection::SimpleConnection::batch_execute(
            self,
            "SET LOCAL enable_sort = off; SET LOCAL enable_bitmapscan = off; SET LOCAL jit = off",
        )?;
        claim(self, request)
    }

    /// `FOR UPDATE`: another worker's limited claim of the queue waits for this one's commit,
    /// then counts what it claimed.
    fn lock_queue(&mut self, name: &str) -> QueryResult<Option<QueueRow>> {
        use crate::schema::queues::dsl as qs;
        qs::queues
            .filter(qs::name.eq(name))
            .select(QueueRow::as_select())
            .for_update()
            .optional_to_completion(self)
    }

    /// One statement for the whole round (one round trip instead of one per task).
    fn record_outcomes(&mut self, worker: &str, rows: &[OutcomeRow<'_>]) -> QueryResult<Vec<i64>> {
        use diesel::sql_types::Nullable;
        struct RecordOutcomes;
        Prepared::<Pg, RecordOutcomes, BigInt>::sql(
            "UPDATE task_execs AS t \
             SET state = v.state, result = v.result, error = v.error, finished = v.finished \
             FROM unnest(",
        )
        .bind::<Array<BigInt>, _>(rows.iter().map(|r| r.id).collect::<Vec<_>>())
        .then(", ")
        .bind::<Array<Text>, _>(rows.iter().map(|r| r.state.as_str()).collect::<Vec<_>>())
        .then(", ")
        .bind::<Array<Nullable<Text>>, _>(
            rows.iter().map(|r| r.result.as_deref()).collect::<Vec<_>>(),
        )
        .then(", ")
        .bind::<Array<Nullable<Text>>, _>(
            rows.iter().map(|r| r.error.as_deref()).collect::<Vec<_>>(),
        )
        .then(", ")
        .bind::<Array<Timestamp>, _>(rows.iter().map(|r| r.finished).collect::<Vec<_>>())
        .then(
            ") AS v(id, state, result, error, finished) \
             WHERE t.id = v.id AND t.state = 'processing' AND t.worker = ",
        )
        .bind::<Text, _>(worker)
        .then(" RETURNING t.id")
        .load(self)
    }

    /// `FOR UPDATE SKIP LOCKED`: a schedule another worker is materializing is left to it.
    fn lock_schedules(&mut self, names: &[&str]) -> QueryResult<Vec<ScheduleExecRow>> {
        se::schedule_execs
            .filter(se::name.eq_any(names))
            .for_update()
            .skip_locked()
            .load(self)
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

    /// The server's clock, shared by workers on every machine.
    fn database_now(&mut self) -> QueryResult<chrono::DateTime<chrono::Utc>> {
        diesel::sql_query("SELECT now() AS now")
            .one_to_completion::<DatabaseNow>(self)
            .map(|row| row.now)
    }

    /// The planner's estimates (`EXPLAIN`): the table's size scaled to its pages now, times
    /// the state's frequency in the statistics autovacuum keeps. Counting a million rows
    /// through an index-only scan takes 60 ms and more.
    fn count_big_states(&mut self, states: &[&str], _others: i64) -> QueryResult<Vec<(i64, bool)>> {
        states
            .iter()
            .map(|state| {
                let plan = diesel::sql_query(format!(
                    "EXPLAIN (FORMAT JSON) SELECT 1 FROM task_execs WHERE state = '{state}'"
                ))
                .one_to_completion::<Explained>(self)?
                .plan;
                let rows = serde_json::from_str::<serde_json::Value>(&plan)
                    .ok()
                    .and_then(|v| v[0]["Plan"]["Plan Rows"].as_f64())
                    .unwrap_or(0.0);
                Ok((rows as i64, false))
            })
            .collect()
    }

    fn finished_per_minute(&mut self, since: NaiveDateTime) -> QueryResult<Vec<MinuteCount>> {
        diesel::sql_query(FINISHED_PER_MINUTE)
            .bind::<diesel::sql_types::Timestamp, _>(since)
            .load(self)
    }

    fn finished_per_second(&mut self, since: NaiveDateTime) -> QueryResult<Vec<SecondCount>> {
        diesel::sql_query(
            "SELECT CAST(EXTRACT(EPOCH FROM date_trunc('second', finished)) AS BIGINT) AS second, \
             COUNT(*) AS n FROM task_execs WHERE finished >= $1 GROUP BY 1",
        )
        .bind::<diesel::sql_types::Timestamp, _>(since)
        .load(self)
    }

    // SKIP LOCKED in each: two workers' retention passes delete different rows without
    // waiting, and a row a worker holds is not waited for either.
    fn delete_expired(&mut self, now: NaiveDateTime, limit: i64) -> QueryResult<usize> {
        diesel::sql_query(format!(
            "DELETE FROM task_execs WHERE id IN (SELECT t.id FROM task_execs t \
             WHERE t.result_ttl IS NOT NULL AND t.result_ttl >= 0 AND t.finished IS NOT NULL \
             AND t.finished + t.result_ttl * interval '1 second' <= $1 {DELETABLE} \
             LIMIT $2 FOR UPDATE SKIP LOCKED)"
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
             WHERE t.finished IS NOT NULL AND t.finished <= $1 AND t.result_ttl IS NULL \
             {DELETABLE} LIMIT $2 FOR UPDATE SKIP LOCKED)"
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
                         ORDER BY s.id DESC LIMIT 1 OFFSET $1) \
             AND NOT EXISTS (SELECT 1 FROM task_execs p WHERE p.replaced_by = t.id) \
             {DELETABLE} LIMIT $2 FOR UPDATE OF t SKIP LOCKED)"
        ))
        .bind::<diesel::sql_types::BigInt, _>(keep - 1)
        .bind::<diesel::sql_types::BigInt, _>(limit)
        .execute(self)
    }
}

/// From this many rows on, a bulk enqueue of non-unique rows goes through `COPY FROM`
/// (binary), several times faster than multi-row `INSERT`s once the rows outweigh a round trip.
const COPY_FROM_ROWS: usize = 100;

/// A row as `COPY FROM` writes it: with its id, taken from the sequence first, since `COPY`
/// returns none.
#[derive(Insertable)]
#[diesel(table_name = crate::schema::task_execs, treat_none_as_default_value = false)]
struct CopiedTaskExec<'a> {
    id: i64,
    task_name: &'a str,
    args: &'a str,
    queue: &'a str,
    priority: i32,
    state: &'a str,
    due: NaiveDateTime,
    created: NaiveDateTime,
    retries: i32,
    retry_delay: i64,
    replaced_by: Option<i64>,
    unique_key: Option<&'a str>,
    schedule: Option<&'a str>,
    timeout_ms: Option<i64>,
    result_ttl: Option<i64>,
    hook: Option<&'a str>,
    own_retries: bool,
    signature: Option<&'a str>,
    #[cfg(feature = "otel")]
    trace_context: Option<&'a str>,
}

#[derive(QueryableByName)]
struct NextId {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    id: i64,
}

/// Enqueues `rows` (none unique) with two round trips whatever their number: their ids from
/// the sequence, then one `COPY FROM`, whose statement-level trigger still notifies idle
/// workers. Runs inside the caller's transaction, so the rows are stored only at its commit.
fn copy_rows(c: &mut PgConnection, rows: &[NewTaskExec]) -> QueryResult<Vec<Enqueued>> {
    let mut ids: Vec<i64> = diesel::sql_query(
        "SELECT nextval(pg_get_serial_sequence('task_execs', 'id')) AS id \
         FROM generate_series(1, $1)",
    )
    .bind::<diesel::sql_types::BigInt, _>(rows.len() as i64)
    .load::<NextId>(c)?
    .into_iter()
    .map(|n| n.id)
    .collect();
    // Handles go back in the caller's order, with ids growing in it as an INSERT's do.
    ids.sort_unstable();
    let copied: Vec<CopiedTaskExec<'_>> = rows
        .iter()
        .zip(&ids)
        .map(|(row, &id)| CopiedTaskExec {
            id,
            task_name: &row.task_name,
            args: &row.args,
            queue: &row.queue,
            priority: row.priority,
            state: row.state,
            due: row.due,
            created: row.created,
            retries: row.retries,
            retry_delay: row.retry_delay,
            replaced_by: row.replaced_by,
            unique_key: row.unique_key.as_deref(),
            schedule: row.schedule.as_deref(),
            timeout_ms: row.timeout_ms,
            result_ttl: row.result_ttl,
            hook: row.hook.as_deref(),
            own_retries: row.own_retries,
            signature: row.signature.as_deref(),
            #[cfg(feature = "otel")]
            trace_context: row.trace_context.as_deref(),
        })
        .collect();
    let stored = diesel::copy_from(te::task_execs)
        .from_insertable(copied)
        .execute(c)?;
    if stored != rows.len() {
        return Err(diesel::result::Error::QueryBuilderError(
            format!("COPY stored {stored} of {} rows", rows.len()).into(),
        ));
    }
    Ok(ids
        .into_iter()
        .map(|id| Enqueued {
            id,
            duplicate: false,
        })
        .collect())
}

/// The queued rows' queues, through the claim index: one seek per queue (a skip scan), whatever
/// the number of rows.
const QUEUED_QUEUES: &str = "WITH RECURSIVE queued(queue) AS (\
     (SELECT t.queue FROM task_execs AS t WHERE t.state = 'queued' ORDER BY t.queue LIMIT 1) \
     UNION ALL \
     SELECT (SELECT t.queue FROM task_execs AS t \
             WHERE t.state = 'queued' AND t.queue > queued.queue ORDER BY t.queue LIMIT 1) \
     FROM queued WHERE queued.queue IS NOT NULL) ";

/// One statement: for each served queue, the first `limit` rows of its range of the claim
/// index (`task_execs_queued`: queue, then claim order) that no other worker holds, locked
/// (`FOR UPDATE SKIP LOCKED`: concurrent workers take different rows without waiting); the
/// best `limit` of those are claimed, the others unlocked at commit. Rows of queues the worker
/// does not serve are never read, however many. States are literals: a generic plan matches
/// a partial index only against a constant. The claimed ids are an array (`id = ANY(ARRAY(…))`)
/// rather than `id IN (…)`: PostgreSQL's generic plan for the `IN` form, which does not know
/// the limit, hash-joins the ids against a sequential scan of the whole table (149 ms a claim
/// beside 2,000,000 rows); the array is looked up in the primary key whatever the plan.
fn claim(c: &mut PgConnection, request: &ClaimRequest<'_>) -> QueryResult<Vec<ClaimedExec>> {
    struct ClaimNamedQueues;
    struct ClaimQueuedQueues;
    let mut claimed = match request.queues {
        QueueSelection::Only(only) => served_heads(
            claiming::<ClaimNamedQueues>(Prepared::sql(""), request)
                .then(" WHERE id = ANY(ARRAY(SELECT c.id FROM unnest(")
                .bind::<Array<Text>, _>(only.as_slice())
                .then(") AS served(queue) CROSS JOIN LATERAL ("),
            request,
        )
        .load(c)?,
        QueueSelection::All | QueueSelection::Except(_) => {
            let except: &[String] = match request.queues {
                QueueSelection::Except(except) => except,
                _ => &[],
            };
            served_heads(
                claiming::<ClaimQueuedQueues>(Prepared::sql(QUEUED_QUEUES), request)
                    .then(
                        " WHERE id = ANY(ARRAY(SELECT c.id FROM (SELECT queue FROM queued \
                         WHERE queue IS NOT NULL AND queue <> ALL(",
                    )
                    .bind::<Array<Text>, _>(except)
                    .then(")) AS served CROSS JOIN LATERAL ("),
                request,
            )
            .load(c)?
        }
    };
    in_claim_order(&mut claimed);
    Ok(claimed)
}

type Claiming<'a, K> = Prepared<'a, Pg, K, ClaimedSqlType>;

/// `start`, then the claim's `UPDATE` by `request.worker` at `request.now`.
fn claiming<'a, K>(start: Claiming<'a, K>, request: &'a ClaimRequest<'_>) -> Claiming<'a, K> {
    start
        .then("UPDATE task_execs SET state = 'processing', started = ")
        .bind::<Timestamp, _>(request.now.naive_utc())
        .then(", worker = ")
        .bind::<Text, _>(request.worker)
}

/// The claim's end: the first rows of each `served.queue` that no one holds, locked, and the
/// best of them.
fn served_heads<'a, K>(claim: Claiming<'a, K>, request: &'a ClaimRequest<'_>) -> Claiming<'a, K> {
    let limit = i64::try_from(request.limit).unwrap_or(i64::MAX);
    claim
        .then(
            "SELECT t.id, t.priority, t.due FROM task_execs AS t \
             WHERE t.state = 'queued' AND t.queue = served.queue AND t.task_name = ANY(",
        )
        .bind::<Array<Text>, _>(request.task_names)
        .then(") ORDER BY t.priority DESC, t.due, t.id LIMIT ")
        .bind::<BigInt, _>(limit)
        .then(" FOR UPDATE SKIP LOCKED) AS c ORDER BY c.priority DESC, c.due, c.id LIMIT ")
        .bind::<BigInt, _>(limit)
        .then(")) RETURNING ")
        .then(CLAIMED_SQL)
}
