//! What only PostgreSQL needs: its migrations, serialised across processes.

use diesel::prelude::*;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use super::Migrate;

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
