//! What only PostgreSQL needs: its migrations, serialised across processes.

use diesel::prelude::*;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use super::Migrate;
use super::complete::OutcomeRow;

const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// An arbitrary constant naming toosimple's migration lock among the server's advisory locks.
const MIGRATION_LOCK: i64 = 0x746f_6f73_696d_706c;

impl Migrate for PgConnection {
    /// Runs under an advisory lock, so that many workers starting at once on a new database do
    /// not race to create the same tables.
    fn migrate(&mut self) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        self.transaction(|conn| {
            diesel::sql_query(format!("SELECT pg_advisory_xact_lock({MIGRATION_LOCK})"))
                .execute(conn)?;
            conn.run_pending_migrations(MIGRATIONS)?;
            Ok(())
        })
    }
}

#[derive(QueryableByName)]
struct UpdatedId {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    id: i64,
}

/// Records many outcomes in one statement (one round trip instead of one per task), only on
/// rows `worker` still holds. Returns the ids it updated.
pub(super) fn record_outcomes(
    conn: &mut PgConnection,
    worker: &str,
    rows: &[OutcomeRow<'_>],
) -> QueryResult<Vec<i64>> {
    use diesel::sql_types::{Array, BigInt, Nullable, Text, Timestamp};
    let updated: Vec<UpdatedId> = diesel::sql_query(
        "UPDATE task_execs AS t \
         SET state = v.state, result = v.result, error = v.error, finished = v.finished \
         FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::timestamp[]) \
              AS v(id, state, result, error, finished) \
         WHERE t.id = v.id AND t.state = 'processing' AND t.worker = $6 \
         RETURNING t.id",
    )
    .bind::<Array<BigInt>, _>(rows.iter().map(|r| r.id).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(rows.iter().map(|r| r.state.as_str()).collect::<Vec<_>>())
    .bind::<Array<Nullable<Text>>, _>(rows.iter().map(|r| r.result.clone()).collect::<Vec<_>>())
    .bind::<Array<Nullable<Text>>, _>(rows.iter().map(|r| r.error).collect::<Vec<_>>())
    .bind::<Array<Timestamp>, _>(rows.iter().map(|r| r.finished).collect::<Vec<_>>())
    .bind::<Text, _>(worker)
    .load(conn)?;
    Ok(updated.into_iter().map(|u| u.id).collect())
}
