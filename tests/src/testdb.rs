use std::time::{Duration, Instant};

use diesel::prelude::*;
use toosimple_core::schema::task_execs::dsl as te;
use toosimple_core::store::ClaimedExec;
use toosimple_core::testing::TestStore;
use toosimple_core::{State, Store, TaskExec};

/// The environment variable naming the PostgreSQL server tests create their schemas on.
pub const POSTGRES_URL_ENV: &str = "TOOSIMPLE_TEST_POSTGRES_URL";
const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
/// The environment variable naming the MariaDB (or MySQL) server tests create their databases
/// on.
pub const MYSQL_URL_ENV: &str = "TOOSIMPLE_TEST_MYSQL_URL";
const DEFAULT_MYSQL_URL: &str = "mysql://root@127.0.0.1:3306/test";

/// The environment variable naming PostgreSQL through a transaction-pooling PgBouncer
/// (`.ci/run` starts one on a free port and sets it).
pub const PGBOUNCER_URL_ENV: &str = "TOOSIMPLE_TEST_PGBOUNCER_URL";
const DEFAULT_PGBOUNCER_URL: &str = "postgres://postgres@127.0.0.1:6432/test?pgbouncer=true";

/// Whether this run is CI's (`CI=true`), where a backend test never skips.
fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// An isolated database for one test, made the default store; dropped with the test.
pub struct TestDb {
    /// The store on this database (also the default store).
    pub store: Store,
    /// Its URL.
    pub url: String,
    cleanup: Cleanup,
    // The default store is process-wide: under `cargo test` tests on threads of one process
    // take turns through it (nextest runs each test in its own process).
    _default: TestStore,
}

enum Cleanup {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres { admin_url: String, schema: String },
    Mysql { admin_url: String, database: String },
    PostgresDatabase { admin_url: String, database: String },
    None,
}

impl TestDb {
    /// A fresh SQLite file in a temporary folder.
    pub fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("create a temporary folder");
        let url = format!("sqlite://{}", dir.path().join("test.sqlite3").display());
        let default = TestStore::connect(&url).expect("open the test SQLite database");
        TestDb {
            store: default.store().clone(),
            url,
            cleanup: Cleanup::Sqlite(dir),
            _default: default,
        }
    }

    /// A fresh SQLite file `test.sqlite3` in `folder`, which the caller keeps and removes.
    pub fn sqlite_in(folder: &std::path::Path) -> TestDb {
        let url = format!("sqlite://{}", folder.join("test.sqlite3").display());
        let default = TestStore::connect(&url).expect("open the test SQLite database");
        TestDb {
            store: default.store().clone(),
            url,
            cleanup: Cleanup::None,
            _default: default,
        }
    }

    /// The URL of the PostgreSQL server tests use.
    pub fn postgres_admin_url() -> String {
        std::env::var(POSTGRES_URL_ENV).unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_string())
    }

    /// A connection to the test PostgreSQL server as its administrator, or `None` (with the
    /// reason printed) when it cannot be reached outside CI; in CI that is a failure.
    pub fn postgres_admin() -> Option<PgConnection> {
        let admin_url = TestDb::postgres_admin_url();
        match PgConnection::establish(&admin_url) {
            Ok(conn) => Some(conn),
            Err(e) => {
                let reason = format!("PostgreSQL at {admin_url} is unreachable: {e}");
                if in_ci() {
                    panic!("{reason} (CI=true: PostgreSQL tests must run)");
                }
                eprintln!("SKIPPED: {reason}; set {POSTGRES_URL_ENV} to run the PostgreSQL tests");
                None
            }
        }
    }

    /// A fresh schema on the test PostgreSQL server, or `None` (with the reason printed) when
    /// the server cannot be reached outside CI.
    pub fn postgres() -> Option<TestDb> {
        let admin_url = TestDb::postgres_admin_url();
        let mut admin = TestDb::postgres_admin()?;
        let schema = format!("t_{}_{:08x}", std::process::id(), rand::random::<u32>());
        diesel::sql_query(format!("CREATE SCHEMA {schema}"))
            .execute(&mut admin)
            .expect("create the test schema");
        let separator = if admin_url.contains('?') { '&' } else { '?' };
        let url = format!("{admin_url}{separator}options=-csearch_path%3D{schema}");
        let default = TestStore::connect(&url).expect("open the test PostgreSQL schema");
        Some(TestDb {
            store: default.store().clone(),
            url,
            cleanup: Cleanup::Postgres { admin_url, schema },
            _default: default,
        })
    }

    /// A fresh PostgreSQL database reached through PgBouncer in transaction mode
    /// (`TOOSIMPLE_TEST_PGBOUNCER_URL`), or `None` (with the reason printed) when PgBouncer
    /// cannot be reached outside CI. A database rather than a schema: a proxy that pools
    /// sessions passes on no `search_path`.
    pub fn pgbouncer() -> Option<TestDb> {
        let pooled_url =
            std::env::var(PGBOUNCER_URL_ENV).unwrap_or_else(|_| DEFAULT_PGBOUNCER_URL.to_string());
        let reachable = toosimple_core::Store::connect(&pooled_url).map(|_| ());
        if let Err(e) = reachable {
            let reason = format!("PgBouncer at {pooled_url} is unreachable: {e}");
            if in_ci() {
                panic!("{reason} (CI=true: PgBouncer tests must run)");
            }
            eprintln!("SKIPPED: {reason}; set {PGBOUNCER_URL_ENV} to run the PgBouncer tests");
            return None;
        }
        let admin_url = TestDb::postgres_admin_url();
        let mut admin = PgConnection::establish(&admin_url).expect("reach PostgreSQL directly");
        let database = format!("t_{}_{:08x}", std::process::id(), rand::random::<u32>());
        diesel::sql_query(format!("CREATE DATABASE {database}"))
            .execute(&mut admin)
            .expect("create the test database");
        let url = url_with_database(&pooled_url, &database);
        let default = TestStore::connect(&url).expect("open the test database through PgBouncer");
        Some(TestDb {
            store: default.store().clone(),
            url,
            cleanup: Cleanup::PostgresDatabase {
                admin_url,
                database,
            },
            _default: default,
        })
    }

    /// The URL of the MariaDB server tests use.
    pub fn mysql_admin_url() -> String {
        std::env::var(MYSQL_URL_ENV).unwrap_or_else(|_| DEFAULT_MYSQL_URL.to_string())
    }

    /// A fresh database on the test MariaDB server, or `None` (with the reason printed) when
    /// the server cannot be reached outside CI.
    pub fn mysql() -> Option<TestDb> {
        let admin_url = TestDb::mysql_admin_url();
        let mut admin = match MysqlConnection::establish(&admin_url) {
            Ok(conn) => conn,
            Err(e) => {
                let reason = format!("MariaDB at {admin_url} is unreachable: {e}");
                if in_ci() {
                    panic!("{reason} (CI=true: MariaDB tests must run)");
                }
                eprintln!("SKIPPED: {reason}; set {MYSQL_URL_ENV} to run the MariaDB tests");
                return None;
            }
        };
        let database = format!("t_{}_{:08x}", std::process::id(), rand::random::<u32>());
        diesel::sql_query(format!("CREATE DATABASE {database}"))
            .execute(&mut admin)
            .expect("create the test database");
        let url = url_with_database(&admin_url, &database);
        let default = TestStore::connect(&url).expect("open the test MariaDB database");
        Some(TestDb {
            store: default.store().clone(),
            url,
            cleanup: Cleanup::Mysql {
                admin_url,
                database,
            },
            _default: default,
        })
    }

    /// For a database reached through PgBouncer, its URL on the PostgreSQL server itself.
    pub fn direct_url(&self) -> Option<String> {
        match &self.cleanup {
            Cleanup::PostgresDatabase {
                admin_url,
                database,
            } => Some(url_with_database(admin_url, database)),
            _ => None,
        }
    }

    /// A worker on this database, as the tests run one in-process: a 50 ms tick (new work and
    /// retries are found quickly), label `test-worker`.
    pub fn worker(&self) -> toosimple_worker::Worker {
        toosimple_worker::Worker::new()
            .store(self.store.clone())
            .tick(Duration::from_millis(50))
            .label("test-worker")
    }

    /// Runs `sql` on this database (to simulate what a worker or a corrupt row would leave).
    pub fn execute(&self, sql: &str) {
        let mut conn = self.store.connection().expect("a connection");
        diesel::sql_query(sql)
            .execute(&mut *conn)
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// Creates the `side_effects` table that the `record` tasks write to.
    pub fn create_side_effects(&self) {
        let id = match self.store.backend() {
            toosimple_core::Backend::Sqlite => "INTEGER PRIMARY KEY AUTOINCREMENT",
            toosimple_core::Backend::Postgres => "BIGSERIAL PRIMARY KEY",
            toosimple_core::Backend::Mysql => "BIGINT AUTO_INCREMENT PRIMARY KEY",
        };
        self.execute(&format!(
            "CREATE TABLE side_effects (id {id}, n BIGINT NOT NULL, pid BIGINT NOT NULL)"
        ));
    }

    /// The `n` values recorded in `side_effects`, in the order they were written.
    pub fn side_effects(&self) -> Vec<i64> {
        use crate::tasks::side_effects::dsl as se;
        let mut conn = self.store.connection().expect("a connection");
        se::side_effects
            .order(se::id)
            .select(se::n)
            .load(&mut *conn)
            .expect("read side_effects")
    }

    /// A command running the application binary `bin` on this database.
    pub fn app(&self, bin: &str) -> std::process::Command {
        let mut command = std::process::Command::new(bin);
        command
            .env("TOOSIMPLE_DATABASE_URL", &self.url)
            .env("TOOSIMPLE_LOG", "info");
        command
    }

    /// Moves the finish time of every finished execution `by` into the past: time passing for
    /// a retention test without waiting for it.
    pub fn age_finished(&self, by: chrono::TimeDelta) {
        let mut conn = self.store.connection().expect("a connection");
        let finished: Vec<(i64, chrono::NaiveDateTime)> = te::task_execs
            .filter(te::finished.is_not_null())
            .select((te::id, te::finished.assume_not_null()))
            .load(&mut *conn)
            .expect("read the finished executions");
        for (id, at) in finished {
            diesel::update(te::task_execs.find(id))
                .set(te::finished.eq(at - by))
                .execute(&mut *conn)
                .expect("move a finish time back");
        }
    }

    /// Counts the rows matching `where_clause` in `task_execs`.
    pub fn count(&self, where_clause: &str) -> i64 {
        #[derive(QueryableByName)]
        struct Count {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let mut conn = self.store.connection().expect("a connection");
        let sql = format!("SELECT COUNT(*) AS n FROM task_execs WHERE {where_clause}");
        diesel::sql_query(&sql)
            .get_result::<Count>(&mut *conn)
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .n
    }
}

impl TestDb {
    /// Runs execution `id` through a worker's own run-and-record path, without a worker loop:
    /// the row (queued, sleeping and run early, or set processing by the test) is claimed for the label `by-hand` (the
    /// one step done in SQL here, so that this execution and no other is taken), then run by the worker's executor and recorded by the
    /// store's completion, retries and replacements included. Returns the recorded state.
    pub fn run_by_hand(&self, id: i64) -> State {
        const LABEL: &str = "by-hand";
        let now = chrono::Utc::now().naive_utc();
        let mut conn = self.store.connection().expect("a connection");
        let claimed = diesel::update(te::task_execs.find(id).filter(te::state.eq_any([
            State::Queued.as_str(),
            State::Sleeping.as_str(),
            State::Processing.as_str(),
        ])))
        .set((
            te::state.eq(State::Processing.as_str()),
            te::worker.eq(LABEL),
            te::started.eq(now),
        ))
        .execute(&mut *conn)
        .expect("claim the execution");
        assert_eq!(claimed, 1, "execution {id} is not waiting nor processing");
        let claimed = te::task_execs
            .find(id)
            .select(ClaimedExec::as_select())
            .first(&mut *conn)
            .expect("read the claimed execution");
        drop(conn);
        let completion = toosimple_worker::run_claimed(claimed).expect("the task is registered");
        let report = self
            .store
            .complete(LABEL, &[completion])
            .expect("record the outcome");
        assert_eq!(report.recorded, 1, "the outcome of {id} was not recorded");
        TaskExec::get_in(&self.store, id)
            .expect("the execution exists")
            .state
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::Postgres { admin_url, schema } => {
                if let Ok(mut admin) = PgConnection::establish(admin_url) {
                    let _ = diesel::sql_query(format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                        .execute(&mut admin);
                }
            }
            Cleanup::Mysql {
                admin_url,
                database,
            } => {
                if let Ok(mut admin) = MysqlConnection::establish(admin_url) {
                    let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {database}"))
                        .execute(&mut admin);
                }
            }
            Cleanup::PostgresDatabase {
                admin_url,
                database,
            } => {
                // FORCE: PgBouncer keeps its server sessions to the database open.
                if let Ok(mut admin) = PgConnection::establish(admin_url) {
                    let _ = diesel::sql_query(format!(
                        "DROP DATABASE IF EXISTS {database} WITH (FORCE)"
                    ))
                    .execute(&mut admin);
                }
            }
            Cleanup::Sqlite(_) | Cleanup::None => {}
        }
    }
}

/// `url` (a `mysql://` or `postgres://` URL) naming `database` instead of its own.
pub fn url_with_database(url: &str, database: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let server = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{server}/{database}?{query}"),
        None => format!("{server}/{database}"),
    }
}

/// Waits for `child` to exit, panicking after `timeout` with `what` and `context()` (its
/// log, say).
pub fn wait_for_exit(
    child: &mut std::process::Child,
    timeout: Duration,
    what: &str,
    context: impl Fn() -> String,
) -> std::process::ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("look at the child process") {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not exit within {timeout:?}:\n{}",
            context()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Polls `condition` until it holds, panicking with `what` after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}
