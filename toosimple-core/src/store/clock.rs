//! The database's clock: the one time every worker of a database agrees on.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::{AnyConnection, Store};
use crate::error::Result;

#[derive(QueryableByName)]
struct DatabaseNow {
    #[diesel(sql_type = diesel::sql_types::Timestamptz)]
    now: DateTime<Utc>,
}

impl Store {
    /// The current time by the database's clock.
    ///
    /// Workers on several machines compare each other's heartbeats and due times, so they
    /// must share one clock: PostgreSQL's (`SELECT now()`, outside any transaction, so the
    /// statement's own time). SQLite has no server: every process using the file runs on the
    /// same machine, whose clock is returned without a query.
    pub fn database_now(&self) -> Result<DateTime<Utc>> {
        self.read(
            || "reading the database's clock".to_string(),
            |c| match c {
                AnyConnection::Postgresql(pg) => diesel::sql_query("SELECT now() AS now")
                    .get_result::<DatabaseNow>(pg)
                    .map(|row| row.now),
                AnyConnection::Sqlite(_) => Ok(Utc::now()),
            },
        )
    }
}
