//! Test support for toosimple's end-to-end tests, and a library of tasks the tests run.
//!
//! Every test gets its own database: a SQLite file in a temporary folder, or a PostgreSQL
//! schema with a unique name on the server named by `TOOSIMPLE_TEST_POSTGRES_URL`
//! (default `postgres://postgres@127.0.0.1:5432/test`). [`backend_suite!`] runs each test
//! function once per backend.
//!
//! The tasks in [`tasks`] live in this library so that the tests also prove tasks defined in a
//! library crate are visible to the binaries and tests that link it.

pub mod smtp;
pub mod tasks;
mod testdb;
pub mod tmpfs;

pub use testdb::{POSTGRES_URL_ENV, TestDb, wait_for_exit, wait_until};

/// Instantiates test functions `fn name(db: &TestDb)` once on SQLite and once on PostgreSQL,
/// as `sqlite::name` and `postgres::name`.
///
/// Without a reachable PostgreSQL the postgres tests print why and return, except in CI
/// (`CI=true`), where they fail.
#[macro_export]
macro_rules! backend_suite {
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
    };
}

/// The README's Rust blocks: `cargo test --doc` compiles each, and runs those not marked
/// `no_run`, so that the README cannot drift from the API. Shell blocks (```` ```sh ````) are
/// checked by `demo/tests/deploy.rs`.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
