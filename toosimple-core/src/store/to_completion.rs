//! Reading the rows of a statement that writes, without losing the statement's errors.
//!
//! # Why every `… RETURNING` (and every read in a write path) goes through here
//!
//! SQLite makes an autocommit statement's changes at its first step but commits them only when
//! the statement runs to its end (`SQLITE_DONE`). diesel's `get_result` and `first` read one
//! row and then reset the statement, and diesel ignores what `sqlite3_reset` returns: a commit
//! that fails at that moment (`SQLITE_FULL` on a full disk, `SQLITE_IOERR`) never reaches the
//! caller, who receives the id of a row that was rolled back. On a full disk every
//! `queue()` returned `Ok` and stored nothing.
//!
//! [`RunToCompletion`] loads every row instead, which steps the statement until SQLite says it
//! is done, so the commit's error is the statement's error. Inside an explicit transaction the
//! commit is a statement of its own and already checked; the helpers are used there too, so
//! that a call site is right wherever it is moved. `clippy.toml` forbids `get_result` and
//! `first` in this crate so that the pattern cannot come back.

use diesel::QueryResult;
use diesel::query_dsl::{LoadQuery, RunQueryDsl};

/// `get_result` / `first` / `.optional()` for statements that must run to their end.
pub(crate) trait RunToCompletion<Conn>: RunQueryDsl<Conn> + Sized {
    /// The one row the statement returns (`NotFound` when it returns none).
    fn one_to_completion<'q, U>(self, conn: &mut Conn) -> QueryResult<U>
    where
        Self: LoadQuery<'q, Conn, U>,
    {
        self.optional_to_completion(conn)?
            .ok_or(diesel::result::Error::NotFound)
    }

    /// The first row the statement returns, if any, after running it to its end.
    fn optional_to_completion<'q, U>(self, conn: &mut Conn) -> QueryResult<Option<U>>
    where
        Self: LoadQuery<'q, Conn, U>,
    {
        Ok(self.load::<U>(conn)?.into_iter().next())
    }
}

impl<T: RunQueryDsl<Conn>, Conn> RunToCompletion<Conn> for T {}
