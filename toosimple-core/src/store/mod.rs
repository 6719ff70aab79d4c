//! Where executions are stored: connections, the pool, migrations, and the few operations
//! whose SQL differs between SQLite, PostgreSQL and MariaDB/MySQL.
//!
//! Everything backend-specific stays behind one seam, the `Driver` trait of `driver.rs`:
//! `sqlite/`, `postgres/` and `mysql/` implement it, and the rest of the store writes diesel code
//! once, against [`AnyConnection`].

mod claim;
mod clock;
mod complete;
mod driver;
mod enqueue;
pub(crate) mod flows;
mod hooks;
mod inline;
mod mysql;
mod postgres;
mod prepared;
mod queues;
mod schedules;
mod sqlite;
mod stored_schedules;
pub(crate) mod to_completion;
mod url;
mod workers;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use diesel::prelude::*;
use diesel::r2d2::{ManageConnection, PooledConnection, R2D2Connection};
use diesel::result::ConnectionError;

pub use self::claim::QueueSelection;
// The worker's protocol with the store (what it claims, what it reports back): public so that
// toosimple-worker can speak it, hidden because it is not API and changes with the runtime.
#[doc(hidden)]
pub use self::claim::{ClaimRequest, ClaimedExec};
#[doc(hidden)]
pub use self::complete::{
    AFTER_RESCUE_JUDGED, Completion, CompletionReport, Exchange, Outcome, RESCUE_MAX_WAIT,
    RescuePass,
};
use self::driver::driver;
pub use self::driver::{MinuteCount, SecondCount};
pub use self::enqueue::EnqueueConnection;
#[doc(hidden)]
pub use self::enqueue::{Enqueued, NewTaskExec};
#[doc(hidden)]
pub use self::schedules::MaterializeReport;
use self::url::Target;
pub use self::url::mask as mask_url;
#[doc(hidden)]
pub use self::workers::WorkerRegistration;
use crate::error::{Error, Result};
use crate::signing::Signing;

/// The environment variable naming the database.
pub const DATABASE_URL_ENV: &str = "TOOSIMPLE_DATABASE_URL";

/// The environment variable naming a direct PostgreSQL URL for `LISTEN`, when the store's
/// URL goes through a transaction-pooling proxy (`pgbouncer=true`), where a session's
/// `LISTEN` cannot hold: without it, workers of such a store poll at each tick.
pub const LISTEN_URL_ENV: &str = "TOOSIMPLE_LISTEN_URL";

/// The PostgreSQL channel notified (by a trigger) when executions are inserted: idle workers
/// `LISTEN` to it to start new work at once instead of at their next tick.
pub const QUEUED_CHANNEL: &str = "toosimple_queued";

/// The database used when [`DATABASE_URL_ENV`] is unset: a file in the working directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://toosimple.sqlite3";

pub use self::any::AnyConnection;

mod any {
    // diesel's MultiConnection derive adds public items (its backend, its raw values) that it
    // does not document and we cannot.
    #![allow(missing_docs)]

    use diesel::{MysqlConnection, PgConnection, SqliteConnection};

    /// A connection to any backend, as diesel's `MultiConnection` builds it.
    ///
    /// Application code that enqueues inside its own transaction can pass this, a
    /// `SqliteConnection`, a `PgConnection` or a `MysqlConnection` to a task's `queue_in`.
    #[derive(diesel::MultiConnection)]
    pub enum AnyConnection {
        /// A PostgreSQL connection.
        Postgresql(PgConnection),
        /// A SQLite connection.
        Sqlite(SqliteConnection),
        /// A MariaDB or MySQL connection.
        Mysql(MysqlConnection),
    }
}

/// The database kind behind a [`Store`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// An embedded SQLite file.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
    /// A MariaDB or MySQL server.
    Mysql,
}

/// Opens the pool's connections, dispatching on the URL's scheme so that the driver's own
/// error reaches the user (diesel's `AnyConnection::establish` would hide it).
#[derive(Debug, Clone)]
pub struct ConnectionManager {
    target: Target,
}

impl ManageConnection for ConnectionManager {
    type Connection = AnyConnection;
    type Error = ConnectionError;

    fn connect(&self) -> Result<AnyConnection, ConnectionError> {
        driver::establish(&self.target)
    }

    fn is_valid(&self, conn: &mut AnyConnection) -> Result<(), ConnectionError> {
        conn.ping()
            .map_err(ConnectionError::CouldntSetupConfiguration)
    }

    fn has_broken(&self, conn: &mut AnyConnection) -> bool {
        conn.is_broken()
    }
}

/// The background task behind [`Store::wakeups`]; dropping it stops the wake-ups.
#[derive(Debug)]
pub struct Wakeups(pub(crate) WakeupSource);

/// What runs behind [`Wakeups`]: PostgreSQL's listener is an async task, SQLite's watcher a
/// thread that sleeps between looks (a thread's sleep costs less than an async timer's wake-up
/// on a many-threaded runtime, 500 times a second).
#[derive(Debug)]
pub(crate) enum WakeupSource {
    Task(tokio::task::JoinHandle<()>),
    Thread(Arc<std::sync::atomic::AtomicBool>),
}

impl Drop for Wakeups {
    fn drop(&mut self) {
        match &self.0 {
            WakeupSource::Task(task) => task.abort(),
            WakeupSource::Thread(stop) => stop.store(true, std::sync::atomic::Ordering::Relaxed),
        }
    }
}

/// A pooled connection taken from a [`Store`].
pub type StoreConnection = PooledConnection<ConnectionManager>;

/// A handle on one database: a connection pool whose migrations have run. Cheap to clone.
///
/// Most code never names it: the enqueue API uses the default store, set by [`init`] or read
/// from `TOOSIMPLE_DATABASE_URL`. Tests and multi-database programs make their own.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    pool: r2d2::Pool<ConnectionManager>,
    url: String,
    /// Where the data lives, for messages: the SQLite file's absolute path, else `url`.
    location: String,
    backend: Backend,
    target: Target,
    /// Whether connecting created the SQLite file.
    created: bool,
    /// The keys rows are signed and checked with, shared by every clone of the store and
    /// every pool of it ([`Store::with_own_pool`]).
    signing: Arc<RwLock<Option<Arc<Signing>>>>,
    /// The size of JSON above which arguments are stored compressed, [`NO_COMPRESSION`]
    /// when off; shared as `signing` is.
    compress_above: Arc<AtomicUsize>,
}

/// `compress_above` when compression is off.
const NO_COMPRESSION: usize = usize::MAX;

/// The settings every pool of a store shares.
fn pool_builder() -> r2d2::Builder<ConnectionManager> {
    r2d2::Pool::builder()
        // Short enough that a worker waiting out an outage still answers its signals soon.
        .connection_timeout(Duration::from_secs(5))
        // A failed query marks the connection broken; checking each checkout would cost a
        // round trip per operation.
        .test_on_check_out(false)
        .error_handler(Box::new(r2d2::NopErrorHandler))
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("url", &self.inner.url)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Connects to `url` (`sqlite://path`, `postgres://…` or `mysql://…`) and applies pending
    /// migrations.
    ///
    /// A connection failure is returned at once with the driver's reason (wrong password,
    /// refused port, missing folder), not after a pool time-out.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let url = format!("sqlite://{}", dir.path().join("tasks.sqlite3").display());
    /// let store = toosimple_core::Store::connect(&url)?;
    /// assert_eq!(store.backend(), toosimple_core::Backend::Sqlite);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn connect(url: &str) -> Result<Store> {
        Store::open(url, false)
    }

    /// Like [`connect`](Self::connect), but a SQLite file that does not exist is an error
    /// ([`Error::NoDatabase`], naming its absolute path) instead of a new, empty database: for
    /// commands that only read or change existing executions, which a mistyped path or
    /// another working directory would otherwise answer from an empty file, and leave it
    /// behind. An existing database is migrated as by `connect`; PostgreSQL is unchanged (its
    /// server refuses a database that does not exist).
    pub fn connect_existing(url: &str) -> Result<Store> {
        Store::open(url, true)
    }

    fn open(url: &str, must_exist: bool) -> Result<Store> {
        let target = Target::parse(url)?;
        let masked = url::mask(url);
        let created = match &target {
            Target::Sqlite { path } if !target.is_memory() => {
                let exists = std::path::Path::new(path).exists();
                if must_exist && !exists {
                    return Err(Error::NoDatabase {
                        location: std::path::absolute(path)
                            .map_or_else(|_| path.clone(), |p| p.display().to_string()),
                    });
                }
                !exists
            }
            _ => false,
        };
        let manager = ConnectionManager {
            target: target.clone(),
        };
        // Connect once outside the pool: r2d2 would only report "timed out".
        let mut first = manager.connect().map_err(|e| Error::Connect {
            url: masked.clone(),
            reason: e.to_string().trim_end().to_string(),
        })?;
        driver(&mut first).migrate().map_err(|e| Error::Migrate {
            url: masked.clone(),
            reason: with_pooling_hint(e.to_string()),
        })?;
        let backend = driver(&mut first).backend();
        let builder = pool_builder();
        let pool = if target.is_memory() {
            // Each connection to `:memory:` is its own database: keep exactly one, forever.
            drop(first);
            let pool = builder
                .max_size(1)
                .min_idle(Some(1))
                .idle_timeout(None)
                .max_lifetime(None)
                .build(manager)
                .map_err(|source| Error::Pool {
                    url: masked.clone(),
                    source,
                })?;
            let mut conn = pool.get().map_err(|source| Error::Pool {
                url: masked.clone(),
                source,
            })?;
            driver(&mut conn).migrate().map_err(|e| Error::Migrate {
                url: masked.clone(),
                reason: e.to_string(),
            })?;
            drop(conn);
            pool
        } else {
            drop(first);
            builder
                .max_size(10)
                .min_idle(Some(0))
                .build_unchecked(manager)
        };
        let location = match &target {
            // The file exists now that migrations ran: name it as the user's shell would find it.
            Target::Sqlite { path } if !target.is_memory() => std::fs::canonicalize(path)
                .map_or_else(|_| path.clone(), |p| p.display().to_string()),
            _ => masked.clone(),
        };
        Ok(Store {
            inner: Arc::new(Inner {
                pool,
                location,
                url: masked,
                backend,
                target,
                created,
                signing: Arc::new(RwLock::new(Signing::from_env().map(Arc::new))),
                compress_above: Arc::new(AtomicUsize::new(
                    crate::compression::from_env().unwrap_or(NO_COMPRESSION),
                )),
            }),
        })
    }

    /// Whether connecting created this database: a SQLite file that did not exist (it now
    /// holds the schema and nothing else). Always false for PostgreSQL and `:memory:`.
    pub fn created(&self) -> bool {
        self.inner.created
    }

    /// The same database through a pool of its own, holding at most `size` connections: for
    /// work that must never queue behind the application's (the worker's heartbeat, while
    /// its tasks hold every connection of the shared pool). Connections open when first used;
    /// an in-memory SQLite database, which exists only on its one connection, is shared.
    pub fn with_own_pool(&self, size: u32) -> Store {
        if self.inner.target.is_memory() {
            return self.clone();
        }
        let pool = pool_builder()
            .max_size(size.max(1))
            .min_idle(Some(0))
            .build_unchecked(ConnectionManager {
                target: self.inner.target.clone(),
            });
        Store {
            inner: Arc::new(Inner {
                pool,
                url: self.inner.url.clone(),
                location: self.inner.location.clone(),
                backend: self.inner.backend,
                target: self.inner.target.clone(),
                created: self.inner.created,
                signing: self.inner.signing.clone(),
                compress_above: self.inner.compress_above.clone(),
            }),
        }
    }

    /// Signs the rows enqueued through this store with `signing`'s key, and makes the workers
    /// on it run only rows whose signature verifies (see [`Signing`]); `None` turns signing
    /// off. Every clone of this store (the default store's slot, a worker's) shares the
    /// setting. At connect time it is read from `TOOSIMPLE_SECRET_KEY` and
    /// `TOOSIMPLE_SECRET_KEY_FALLBACKS`.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let url = format!("sqlite://{}", dir.path().join("tasks.sqlite3").display());
    /// let store = toosimple_core::Store::connect(&url)?;
    /// store.set_signing(Some(toosimple_core::Signing::new("s3cret").fallback("old s3cret")));
    /// assert!(store.clone().signing().is_some());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set_signing(&self, signing: Option<Signing>) {
        *self
            .inner
            .signing
            .write()
            .unwrap_or_else(|e| e.into_inner()) = signing.map(Arc::new);
    }

    /// The keys rows are signed and checked with, if any (see [`set_signing`](Self::set_signing)).
    pub fn signing(&self) -> Option<Arc<Signing>> {
        self.inner
            .signing
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Stores the arguments of the executions enqueued through this store zstd-compressed
    /// when their JSON is longer than `above` bytes (see [`compression`](crate::compression));
    /// `None` stores them as they are. Readers (workers, [`TaskExec`](crate::TaskExec), the
    /// admin, the CLI) always see plain JSON. Shared by every clone of the store; at connect
    /// time it is read from `TOOSIMPLE_COMPRESS` and `TOOSIMPLE_COMPRESS_ABOVE`.
    pub fn set_compression(&self, above: Option<usize>) {
        self.inner
            .compress_above
            .store(above.unwrap_or(NO_COMPRESSION), Ordering::Relaxed);
    }

    /// The size of JSON above which arguments are compressed, `None` when compression is off
    /// (see [`set_compression`](Self::set_compression)).
    pub fn compression(&self) -> Option<usize> {
        let above = self.inner.compress_above.load(Ordering::Relaxed);
        (above != NO_COMPRESSION).then_some(above)
    }

    /// Signs `rows` when this store has a key, then compresses their large arguments when
    /// compression is on: the signature covers the plain JSON.
    pub(crate) fn seal(&self, rows: &mut [NewTaskExec]) {
        seal_with(self.signing().as_deref(), self.compression(), rows);
    }

    /// Connects to `TOOSIMPLE_DATABASE_URL`, or to `sqlite://toosimple.sqlite3` when it is unset.
    pub fn from_env() -> Result<Store> {
        let url = std::env::var(DATABASE_URL_ENV).unwrap_or_else(|_| DEFAULT_DATABASE_URL.into());
        Store::connect(&url)
    }

    /// The database URL, password hidden.
    pub fn url(&self) -> &str {
        &self.inner.url
    }

    /// Whether `url` names this store's database: the same SQLite file however its path is
    /// written (`./a.sqlite3`, an absolute path), or the same PostgreSQL URL.
    fn is_at(&self, url: &str) -> Result<bool> {
        let target = Target::parse(url)?;
        Ok(match (&target, &self.inner.target) {
            (Target::Sqlite { path }, Target::Sqlite { .. })
                if !target.is_memory() && !self.inner.target.is_memory() =>
            {
                std::fs::canonicalize(path)
                    .is_ok_and(|p| p.display().to_string() == self.inner.location)
            }
            (new, current) => new == current,
        })
    }

    /// Wakes `wake` each time executions are inserted into this database, for as long as the
    /// returned [`Wakeups`] lives: on PostgreSQL through `LISTEN` on [`QUEUED_CHANNEL`]
    /// (reconnecting by itself), on SQLite by reading the file's change counter
    /// (`PRAGMA data_version`) when the `-wal` file changed (inotify on Linux, a `stat` every
    /// 3 ms elsewhere) on a thread of its own; `None` for an in-memory
    /// SQLite database, which no other connection can write.
    ///
    /// Call it inside a tokio runtime. A lost notification only delays work to the next poll:
    /// polling stays the correctness path.
    pub fn wakeups(&self, wake: std::sync::Arc<tokio::sync::Notify>) -> Option<Wakeups> {
        driver::spawn_wakeups(&self.inner.target, wake).map(Wakeups)
    }

    /// How [`wakeups`](Self::wakeups) learns of new executions on this database, in words
    /// for a worker's start-up log: `LISTEN` (and on which URL), a file's change counter, or
    /// only polling at each tick, and why.
    pub fn wakeup_source(&self) -> String {
        driver::describe_wakeups(&self.inner.target)
    }

    /// Which database kind this is.
    pub fn backend(&self) -> Backend {
        self.inner.backend
    }

    /// Takes a connection from the pool, for running your own diesel queries or passing to a
    /// task's `queue_in` inside your transaction.
    pub fn connection(&self) -> Result<StoreConnection> {
        self.inner.pool.get().map_err(|source| Error::Pool {
            url: self.inner.url.clone(),
            source,
        })
    }

    /// Where the data lives, for messages: the SQLite file's absolute path, or the URL with
    /// its password hidden.
    pub fn location(&self) -> &str {
        &self.inner.location
    }

    /// Counts the executions that succeeded or failed in each minute since `since` (the
    /// admin's chart): the database groups them, with its own way of truncating a time.
    pub fn finished_per_minute(
        &self,
        since: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<MinuteCount>> {
        self.autocommit(
            || "counting executions per minute".to_string(),
            |c| driver(c).finished_per_minute(since.naive_utc()),
        )
    }

    /// Counts the executions finished in each second since `since`, as `(second since the
    /// epoch, count)` (the monitor's throughput).
    pub fn finished_per_second(
        &self,
        since: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<(i64, i64)>> {
        let rows = self.autocommit(
            || "counting executions per second".to_string(),
            |c| driver(c).finished_per_second(since.naive_utc()),
        )?;
        Ok(rows.into_iter().map(|r| (r.second, r.n)).collect())
    }

    /// Runs `f` in a [`write_transaction`] on a pooled connection.
    pub(crate) fn write<T>(
        &self,
        action: impl FnOnce() -> String,
        f: impl FnOnce(&mut AnyConnection) -> QueryResult<T>,
    ) -> Result<T> {
        let mut conn = self.connection()?;
        write_transaction(&mut conn, f).map_err(|source| self.failed(action(), source))
    }

    /// Runs `f` on a pooled connection, outside any explicit transaction: each statement
    /// commits by itself (see `to_completion` for what that asks of statements that return
    /// rows).
    pub(crate) fn autocommit<T>(
        &self,
        action: impl FnOnce() -> String,
        f: impl FnOnce(&mut AnyConnection) -> QueryResult<T>,
    ) -> Result<T> {
        let mut conn = self.connection()?;
        f(&mut conn).map_err(|source| {
            discard_if_dead(&mut conn);
            self.failed(action(), source)
        })
    }

    /// The error for a failed statement: [`Error::DatabaseFull`] when the database ran out of
    /// space, else [`Error::Query`].
    fn failed(&self, action: String, source: diesel::result::Error) -> Error {
        Error::write_failed(
            action,
            || self.inner.location.clone(),
            |action| format!("nothing was stored while {action}"),
            source,
        )
    }
}

/// What a named prepared statement says through a transaction-pooling proxy: the session it
/// was prepared on is another client's now.
const POOLED_PREPARED_STATEMENT: &str = "prepared statement \"__diesel_stmt_";

/// `reason`, with how to fix it when it is a pooling proxy's: the URL was not marked
/// `pgbouncer=true`, so statements were prepared by name.
fn with_pooling_hint(reason: String) -> String {
    if reason.contains(POOLED_PREPARED_STATEMENT) {
        format!(
            "{reason}: the URL seems to reach PostgreSQL through a transaction-pooling proxy \
             (PgBouncer, Supavisor); add `{}=true` to it",
            url::POOLED_PARAMETER
        )
    } else {
        reason
    }
}

/// After a failed statement outside a transaction, makes sure a dead connection does not go
/// back to the pool: diesel marks a connection broken only when a transaction fails, so a
/// connection the server closed (a restart) was handed out again and again, each statement
/// failing with "no connection to the server" (found by the outage test's second worker).
/// The ping costs a round trip on the error path only.
fn discard_if_dead(conn: &mut AnyConnection) {
    use diesel::connection::TransactionManager;
    if conn.ping().is_ok() {
        return;
    }
    match conn {
        AnyConnection::Postgresql(pg) => {
            diesel::connection::AnsiTransactionManager::transaction_manager_status_mut(pg)
                .set_in_error();
        }
        AnyConnection::Sqlite(sqlite) => {
            diesel::connection::AnsiTransactionManager::transaction_manager_status_mut(sqlite)
                .set_in_error();
        }
        AnyConnection::Mysql(mysql) => {
            diesel::connection::AnsiTransactionManager::transaction_manager_status_mut(mysql)
                .set_in_error();
        }
    }
}

/// The totals of the `states` too big for the views to count row by row (see
/// [`TaskExec::view_counts_in`](crate::TaskExec::view_counts_in)), as `(count, exact)`;
/// `others` rows are in the other states.
pub(crate) fn count_big_states(
    conn: &mut AnyConnection,
    states: &[&str],
    others: i64,
) -> QueryResult<Vec<(i64, bool)>> {
    driver(conn).count_big_states(states, others)
}

/// A transaction for read-then-write work. On SQLite it takes the write lock at its start
/// (`BEGIN IMMEDIATE`), so that two writers never both read and then fail to upgrade, which
/// SQLite reports as `SQLITE_BUSY` without waiting; on PostgreSQL it is a plain transaction.
///
/// Inside, `f` gets the `AnyConnection` back, so the same diesel code serves both backends; a
/// nested `transaction` becomes a savepoint.
pub(crate) fn write_transaction<T>(
    conn: &mut AnyConnection,
    f: impl FnOnce(&mut AnyConnection) -> QueryResult<T>,
) -> QueryResult<T> {
    driver(conn).begin_write()?;
    match f(conn) {
        Ok(value) => {
            driver(conn).commit()?;
            Ok(value)
        }
        Err(e) => {
            // A failed rollback leaves the connection marked broken; the pool then drops it.
            let _ = driver(conn).rollback();
            Err(e)
        }
    }
}

static DEFAULT_STORE: Mutex<Option<Store>> = Mutex::new(None);

/// Connects to `url`, applies migrations, and makes it the store that `queue()`,
/// [`TaskExec::get`](crate::TaskExec::get) and the worker use.
///
/// Without a call to `init`, the default store is opened on first use from
/// `TOOSIMPLE_DATABASE_URL` (or `sqlite://toosimple.sqlite3`).
///
/// Call it once, at start: a second call with the same database returns the same store, and
/// one naming another database is [`Error::AlreadyInitialized`], since switching under running
/// code would send its next enqueue to another database. Tests that each want a database of
/// their own use [`TestStore`](crate::testing::TestStore).
///
/// ```
/// let dir = tempfile::tempdir()?;
/// let url = format!("sqlite://{}", dir.path().join("app.sqlite3").display());
/// let store = toosimple_core::init(&url)?;
/// assert_eq!(toosimple_core::init(&url)?.location(), store.location()); // the same store
///
/// let other = format!("sqlite://{}", dir.path().join("other.sqlite3").display());
/// assert!(matches!(
///     toosimple_core::init(&other),
///     Err(toosimple_core::Error::AlreadyInitialized { .. })
/// ));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn init(url: &str) -> Result<Store> {
    let mut slot = DEFAULT_STORE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(current) = &*slot {
        if current.is_at(url)? {
            return Ok(current.clone());
        }
        return Err(Error::AlreadyInitialized {
            current: current.url().to_string(),
            requested: url::mask(url),
        });
    }
    let store = Store::connect(url)?;
    *slot = Some(store.clone());
    Ok(store)
}

/// Puts `store` in the default store's slot and returns what was there, bypassing [`init`]'s
/// once-only rule: how [`TestStore`](crate::testing::TestStore) lends a test its database and
/// gives the previous one back. The caller serialises users of the default store.
pub(crate) fn replace_default(store: Option<Store>) -> Option<Store> {
    std::mem::replace(
        &mut *DEFAULT_STORE.lock().unwrap_or_else(|e| e.into_inner()),
        store,
    )
}

/// Signs, then compresses, `rows` as `signing` and `compress_above` say.
fn seal_with(signing: Option<&Signing>, compress_above: Option<usize>, rows: &mut [NewTaskExec]) {
    for row in rows {
        if let Some(signing) = signing {
            signing.seal(row);
        }
        if let Some(above) = compress_above
            && let Some(packed) = crate::compression::compress(&row.args, above)
        {
            row.args = packed;
        }
    }
}

/// Seals rows enqueued through a caller's own connection (`queue_in`), which names no store:
/// with the default store's settings when it is open, else the environment's.
pub(crate) fn seal_ambient(rows: &mut [NewTaskExec]) {
    let default = DEFAULT_STORE
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    match default {
        Some(store) => store.seal(rows),
        None => seal_with(
            Signing::from_env().as_ref(),
            crate::compression::from_env(),
            rows,
        ),
    }
}

/// The store set by [`init`], or opened from the environment on first use.
pub fn default_store() -> Result<Store> {
    let mut slot = DEFAULT_STORE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(store) = &*slot {
        return Ok(store.clone());
    }
    let store = Store::from_env()?;
    *slot = Some(store.clone());
    Ok(store)
}

impl Store {
    /// See [`TaskExec::delete_expired_in`](crate::TaskExec::delete_expired_in).
    pub(crate) fn delete_expired(&self, now: chrono::NaiveDateTime, limit: i64) -> Result<usize> {
        self.write(
            || "deleting expired task executions".to_string(),
            |c| driver::driver(c).delete_expired(now, limit),
        )
    }

    /// See [`TaskExec::delete_expired_in`](crate::TaskExec::delete_expired_in).
    pub(crate) fn delete_expired_by_default(
        &self,
        cutoff: chrono::NaiveDateTime,
        limit: i64,
    ) -> Result<usize> {
        self.write(
            || "deleting task executions past the default TTL".to_string(),
            |c| driver::driver(c).delete_expired_by_default(cutoff, limit),
        )
    }

    /// See [`TaskExec::delete_over_save_limit_in`](crate::TaskExec::delete_over_save_limit_in).
    pub(crate) fn delete_over_save_limit(&self, keep: i64, limit: i64) -> Result<usize> {
        self.write(
            || "deleting successes over the save limit".to_string(),
            |c| driver::driver(c).delete_over_save_limit(keep, limit),
        )
    }
}

#[cfg(test)]
mod pooling_hint_tests {
    /// What PgBouncer in transaction mode answered our second `migrate` (seen by hand).
    #[test]
    fn a_pooling_proxy_s_prepared_statement_error_names_the_flag() {
        let hinted = super::with_pooling_hint(
            "prepared statement \"__diesel_stmt_1\" already exists".into(),
        );
        assert!(hinted.ends_with("add `pgbouncer=true` to it"), "{hinted}");
        assert_eq!(super::with_pooling_hint("refused".into()), "refused");
    }
}
