//! Hot statements written in SQL that diesel keeps prepared, found by type.
//!
//! `diesel::sql_query` marks its statements unsafe to cache, so a statement written in SQL is
//! parsed again each time it runs, and on PostgreSQL prepared in a round trip of its own. The
//! claim and the recording of outcomes run every round: [`Prepared`] builds them from SQL
//! pieces and typed binds, and diesel caches each per connection under its key type `K`, as it
//! caches a query built with the DSL (with no SQL built or hashed to find it).
//!
//! Each key type names one statement text: a statement whose text varies (a list of
//! placeholders whose length varies) must not be built as one `Prepared` key; pass such lists
//! as one bound value instead (`json_each(?)` on SQLite, an array on PostgreSQL).
//!
//! `ST` is the SQL type of its rows: [`Untyped`] to load `QueryableByName` rows (by column
//! name), or a tuple of SQL types to load `Queryable` rows (by position, cheaper per row).

use std::marker::PhantomData;

use diesel::backend::Backend;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::serialize::ToSql;
use diesel::sql_types::{HasSqlType, Untyped};
use diesel::{QueryResult, RunQueryDsl};

/// A statement of SQL pieces and typed binds, in order; each bind becomes the backend's
/// placeholder (`?`, `$1`). `K` names the statement (see the module's documentation).
pub(super) struct Prepared<'a, DB: Backend, K, ST = Untyped> {
    parts: Vec<Part<'a, DB>>,
    types: PhantomData<fn() -> (K, ST)>,
}

enum Part<'a, DB: Backend> {
    Sql(&'a str),
    Bind(Box<dyn QueryFragment<DB> + Send + 'a>),
}

/// One bound value of SQL type `ST`.
struct Bind<ST, T> {
    value: T,
    sql_type: PhantomData<fn() -> ST>,
}

impl<ST, T, DB> QueryFragment<DB> for Bind<ST, T>
where
    DB: Backend + HasSqlType<ST>,
    T: ToSql<ST, DB>,
{
    fn walk_ast<'b>(&'b self, mut pass: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        pass.push_bind_param::<ST, T>(&self.value)
    }
}

impl<'a, DB: Backend, K, ST> Prepared<'a, DB, K, ST> {
    /// A statement starting with `sql`.
    pub(super) fn sql(sql: &'a str) -> Self {
        Prepared {
            parts: vec![Part::Sql(sql)],
            types: PhantomData,
        }
    }

    /// Appends `sql`.
    pub(super) fn then(mut self, sql: &'a str) -> Self {
        self.parts.push(Part::Sql(sql));
        self
    }

    /// Appends a placeholder bound to `value`, of SQL type `BT`.
    pub(super) fn bind<BT, T>(mut self, value: T) -> Self
    where
        DB: HasSqlType<BT>,
        T: ToSql<BT, DB> + Send + 'a,
        BT: 'a,
    {
        self.parts.push(Part::Bind(Box::new(Bind {
            value,
            sql_type: PhantomData,
        })));
        self
    }
}

impl<DB: Backend, K, ST> QueryFragment<DB> for Prepared<'_, DB, K, ST> {
    fn walk_ast<'b>(&'b self, mut pass: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        // Not `unsafe_to_cache_prepared`: `K` decides the statement, and the binds' types are
        // part of diesel's cache key.
        for part in &self.parts {
            match part {
                Part::Sql(sql) => pass.push_sql(sql),
                Part::Bind(bind) => bind.walk_ast(pass.reborrow())?,
            }
        }
        Ok(())
    }
}

impl<DB: Backend, K: 'static, ST> QueryId for Prepared<'_, DB, K, ST> {
    type QueryId = K;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<DB: Backend, K, ST> Query for Prepared<'_, DB, K, ST> {
    type SqlType = ST;
}

impl<DB: Backend, K, ST, C> RunQueryDsl<C> for Prepared<'_, DB, K, ST> {}
