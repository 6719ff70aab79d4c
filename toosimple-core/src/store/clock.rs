//! The database's clock: the one time every worker of a database agrees on.

use chrono::{DateTime, Utc};

use super::Store;
use super::driver::driver;
use crate::error::Result;

impl Store {
    /// The current time by the database's clock.
    ///
    /// Workers on several machines compare each other's heartbeats and due times, so they
    /// must share one clock: PostgreSQL's (`SELECT now()`, outside any transaction, so the
    /// statement's own time). SQLite has no server: every process using the file runs on the
    /// same machine, whose clock is returned without a query.
    pub fn database_now(&self) -> Result<DateTime<Utc>> {
        self.autocommit(
            || "reading the database's clock".to_string(),
            |c| driver(c).database_now(),
        )
    }
}
