//! What only SQLite needs: connection pragmas, its migrations, `BEGIN IMMEDIATE`.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::result::{ConnectionError, ConnectionResult};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use super::Migrate;

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
