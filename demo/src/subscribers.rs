//! The application's own table, `subscribers`, on the same database as the tasks.

use chrono::{NaiveDateTime, Utc};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use toosimple_core::{AnyConnection, State, Store, TaskExec};

use crate::tasks::send_welcome;

diesel::table! {
    /// Newsletter subscribers.
    subscribers (id) {
        /// Row id.
        id -> BigInt,
        /// Their address, unique.
        email -> Text,
        /// What to call them.
        name -> Text,
        /// The secret in their confirmation link.
        token -> Text,
        /// Whether they followed the link.
        confirmed -> Bool,
        /// When they signed up (UTC).
        created -> Timestamp,
        /// The `send_welcome` execution queued with the row.
        welcome_exec -> Nullable<BigInt>,
    }
}

const SQLITE_DDL: &str = "CREATE TABLE IF NOT EXISTS subscribers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    email TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    token TEXT NOT NULL,
    confirmed BOOLEAN NOT NULL DEFAULT 0,
    created TIMESTAMP NOT NULL,
    welcome_exec BIGINT
)";

const POSTGRES_DDL: &str = "CREATE TABLE IF NOT EXISTS subscribers (
    id BIGSERIAL PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    token TEXT NOT NULL,
    confirmed BOOLEAN NOT NULL DEFAULT FALSE,
    created TIMESTAMP NOT NULL,
    welcome_exec BIGINT
)";

const MYSQL_DDL: &str = "CREATE TABLE IF NOT EXISTS subscribers (
    id BIGINT AUTO_INCREMENT PRIMARY KEY,
    email VARCHAR(255) NOT NULL UNIQUE,
    name TEXT NOT NULL,
    token TEXT NOT NULL,
    confirmed BOOLEAN NOT NULL DEFAULT FALSE,
    created DATETIME(6) NOT NULL,
    welcome_exec BIGINT
) DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin";

/// Creates the `subscribers` table if it is missing (toosimple's own migrations ran when the
/// store connected).
pub fn migrate(store: &Store) -> Result<(), toosimple_core::Error> {
    let mut conn = store.connection()?;
    let ddl = match &mut *conn {
        AnyConnection::Sqlite(_) => SQLITE_DDL,
        AnyConnection::Postgresql(_) => POSTGRES_DDL,
        AnyConnection::Mysql(_) => MYSQL_DDL,
    };
    conn.batch_execute(ddl)
        .map_err(|source| toosimple_core::Error::Query {
            action: "creating the subscribers table".into(),
            source,
        })
}

/// Why a sign-up was refused or failed.
#[derive(Debug)]
pub enum SignupError {
    /// The address is already subscribed.
    Duplicate(String),
    /// The database failed.
    Database(String),
}

impl std::fmt::Display for SignupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SignupError::Duplicate(email) => write!(f, "{email} is already subscribed"),
            SignupError::Database(reason) => write!(f, "the sign-up could not be saved: {reason}"),
        }
    }
}

/// A new subscriber's row id and welcome email execution id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedUp {
    /// The subscriber's id.
    pub id: i64,
    /// The `send_welcome` execution.
    pub welcome_exec: i64,
}

/// Inserts the subscriber and queues their welcome email in one transaction: both happen, or
/// neither (a duplicate address queues nothing).
pub fn sign_up(store: &Store, email: &str, name: &str) -> Result<SignedUp, SignupError> {
    let mut conn = store
        .connection()
        .map_err(|e| SignupError::Database(e.report()))?;
    let token = format!("{:032x}", rand::random::<u128>());
    let now = Utc::now().naive_utc();
    let values = (
        subscribers::email.eq(email),
        subscribers::name.eq(name),
        subscribers::token.eq(&token),
        subscribers::confirmed.eq(false),
        subscribers::created.eq(now),
    );
    macro_rules! insert_and_queue {
        ($c:expr, |$t:ident| $insert:expr) => {
            $c.transaction(|$t| {
                let id: i64 = $insert?;
                // The task row joins this transaction: it exists only if the subscriber does.
                let welcome = send_welcome::queue_in($t, id)
                    .map_err(|e| DieselError::QueryBuilderError(e.report().into()))?;
                diesel::update(subscribers::table.find(id))
                    .set(subscribers::welcome_exec.eq(welcome.id()))
                    .execute($t)?;
                Ok(SignedUp {
                    id,
                    welcome_exec: welcome.id(),
                })
            })
        };
    }
    let result: Result<SignedUp, DieselError> = match &mut *conn {
        AnyConnection::Sqlite(c) => {
            insert_and_queue!(c, |t| diesel::insert_into(subscribers::table)
                .values(values)
                .returning(subscribers::id)
                .get_result(t))
        }
        AnyConnection::Postgresql(c) => {
            insert_and_queue!(c, |t| diesel::insert_into(subscribers::table)
                .values(values)
                .returning(subscribers::id)
                .get_result(t))
        }
        // No RETURNING there: the id is the connection's last one.
        AnyConnection::Mysql(c) => {
            insert_and_queue!(c, |t| diesel::insert_into(subscribers::table)
                .values(values)
                .execute(t)
                .and_then(|_| {
                    diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
                        "CAST(LAST_INSERT_ID() AS SIGNED)",
                    ))
                    .get_result(t)
                }))
        }
    };
    result.map_err(|e| match e {
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
            SignupError::Duplicate(email.to_string())
        }
        other => SignupError::Database(other.to_string()),
    })
}

/// A subscriber as the page shows it.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = subscribers)]
pub struct Subscriber {
    /// Row id.
    pub id: i64,
    /// Their address.
    pub email: String,
    /// Their name.
    pub name: String,
    /// The confirmation secret.
    pub token: String,
    /// Whether they confirmed.
    pub confirmed: bool,
    /// When they signed up.
    pub created: NaiveDateTime,
    /// Their welcome email's first execution.
    pub welcome_exec: Option<i64>,
}

fn query_error(action: &str) -> impl FnOnce(DieselError) -> toosimple_core::Error + '_ {
    move |source| toosimple_core::Error::Query {
        action: action.to_string(),
        source,
    }
}

/// The subscriber with this id.
pub fn get(store: &Store, id: i64) -> Result<Option<Subscriber>, toosimple_core::Error> {
    let mut conn = store.connection()?;
    subscribers::table
        .find(id)
        .select(Subscriber::as_select())
        .first(&mut *conn)
        .optional()
        .map_err(query_error("reading a subscriber"))
}

/// The latest `limit` subscribers, newest first.
pub fn latest(store: &Store, limit: i64) -> Result<Vec<Subscriber>, toosimple_core::Error> {
    let mut conn = store.connection()?;
    subscribers::table
        .order(subscribers::id.desc())
        .limit(limit)
        .select(Subscriber::as_select())
        .load(&mut *conn)
        .map_err(query_error("listing subscribers"))
}

/// Every confirmed subscriber.
pub fn confirmed(store: &Store) -> Result<Vec<Subscriber>, toosimple_core::Error> {
    let mut conn = store.connection()?;
    subscribers::table
        .filter(subscribers::confirmed.eq(true))
        .order(subscribers::id)
        .select(Subscriber::as_select())
        .load(&mut *conn)
        .map_err(query_error("listing confirmed subscribers"))
}

/// Marks the subscriber holding `token` confirmed; their email, if any.
pub fn confirm(store: &Store, token: &str) -> Result<Option<String>, toosimple_core::Error> {
    let mut conn = store.connection()?;
    let holder = subscribers::table.filter(subscribers::token.eq(token));
    let email: Option<String> = holder
        .select(subscribers::email)
        .first(&mut *conn)
        .optional()
        .map_err(query_error("finding a subscriber by token"))?;
    if email.is_some() {
        diesel::update(holder)
            .set(subscribers::confirmed.eq(true))
            .execute(&mut *conn)
            .map_err(query_error("confirming a subscriber"))?;
    }
    Ok(email)
}

/// Deletes the subscribers who did not confirm within `max_age`; how many.
pub fn delete_unconfirmed(
    store: &Store,
    max_age: chrono::TimeDelta,
) -> Result<usize, toosimple_core::Error> {
    let mut conn = store.connection()?;
    let before = (Utc::now() - max_age).naive_utc();
    diesel::delete(
        subscribers::table
            .filter(subscribers::confirmed.eq(false))
            .filter(subscribers::created.lt(before)),
    )
    .execute(&mut *conn)
    .map_err(query_error("deleting unconfirmed subscribers"))
}

/// The state of a welcome email: the last execution of its retry chain.
pub fn welcome_state(store: &Store, first: i64) -> Option<(State, TaskExec)> {
    let mut exec = TaskExec::get_in(store, first).ok()?;
    for _ in 0..64 {
        match exec.replaced_by {
            Some(next) => exec = TaskExec::get_in(store, next).ok()?,
            None => break,
        }
    }
    Some((exec.state, exec))
}
