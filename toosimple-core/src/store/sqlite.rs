//! What only SQLite needs: connection pragmas, its migrations, `BEGIN IMMEDIATE`.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::result::{ConnectionError, ConnectionResult};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use super::Migrate;
use super::complete::OutcomeRow;
use crate::State;
use crate::schema::task_execs::dsl as te;

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

impl Migrate for SqliteConnection {
    fn migrate(&mut self) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        self.immediate_transaction(|conn| {
            conn.run_pending_migrations(MIGRATIONS)?;
            Ok(())
        })
    }
}

/// Records outcomes one statement each: SQLite runs in-process, where a statement costs
/// microseconds and the transaction around them is the one commit. Returns the ids updated,
/// only rows `worker` still holds.
pub(super) fn record_outcomes(
    conn: &mut SqliteConnection,
    worker: &str,
    rows: &[OutcomeRow<'_>],
) -> QueryResult<Vec<i64>> {
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
            te::error.eq(row.error),
            te::finished.eq(row.finished),
        ))
        .execute(conn)?;
        if count == 1 {
            updated.push(row.id);
        }
    }
    Ok(updated)
}
