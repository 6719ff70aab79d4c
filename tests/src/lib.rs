//! Test support for toosimple's end-to-end tests, and a library of tasks the tests run.
//!
//! Every test gets its own database: a SQLite file in a temporary folder, a PostgreSQL
//! schema with a unique name on the server named by `TOOSIMPLE_TEST_POSTGRES_URL`
//! (default `postgres://postgres@127.0.0.1:5432/test`), or a MariaDB database with a unique
//! name on the server named by `TOOSIMPLE_TEST_MYSQL_URL` (default
//! `mysql://root@127.0.0.1:3306/test`). [`backend_suite!`] runs each test function once per
//! backend.
//!
//! The tasks in [`tasks`] live in this library so that the tests also prove tasks defined in a
//! library crate are visible to the binaries and tests that link it.

pub mod smtp;
pub mod tasks;
mod testdb;
pub mod tmpfs;

pub use testdb::{
    MYSQL_URL_ENV, PGBOUNCER_URL_ENV, POSTGRES_URL_ENV, TestDb, url_with_database, wait_for_exit,
    wait_until,
};

/// Instantiates test functions `fn name(db: &TestDb)` once on SQLite, once on PostgreSQL and
/// once on MariaDB, as `sqlite::name`, `postgres::name` and `mysql::name`.
///
/// Without a reachable server the postgres and mysql tests print why and return, except in CI
/// (`CI=true`), where they fail.
///
/// `backend_suite!(pgbouncer; …)` also runs them through PgBouncer ([`pgbouncer_suite!`]).
#[macro_export]
macro_rules! backend_suite {
    (pgbouncer; $($name:ident),* $(,)?) => {
        $crate::backend_suite!($($name),*);
        $crate::pgbouncer_suite!($($name),*);
    };
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[test]
                fn $name() {
                    let db = $crate::TestDb::sqlite();
                    super::$name(&db);
                }
            )*
        }
        mod postgres {
            $(
                #[test]
                fn $name() {
                    let Some(db) = $crate::TestDb::postgres() else { return };
                    super::$name(&db);
                }
            )*
        }
        mod mysql {
            $(
                #[test]
                fn $name() {
                    let Some(db) = $crate::TestDb::mysql() else { return };
                    super::$name(&db);
                }
            )*
        }
    };
}

/// Instantiates test functions `fn name(db: &TestDb)` once more on PostgreSQL reached through
/// PgBouncer in transaction mode, as `pgbouncer::name`: for the paths a pooled deployment
/// takes (enqueueing, workers). Skipped with a printed reason without PgBouncer, except in CI.
#[macro_export]
macro_rules! pgbouncer_suite {
    ($($name:ident),* $(,)?) => {
        mod pgbouncer {
            $(
                #[test]
                fn $name() {
                    let Some(db) = $crate::TestDb::pgbouncer() else { return };
                    super::$name(&db);
                }
            )*
        }
    };
}

/// The README's Rust blocks: `cargo test --doc` compiles each, and runs those not marked
/// `no_run`, so that the README cannot drift from the API. Shell blocks (```` ```sh ````) are
/// checked by `demo/tests/deploy.rs`.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
