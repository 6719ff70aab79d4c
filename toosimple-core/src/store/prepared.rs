//! Hot statements written in SQL that diesel still keeps prepared.
//!
//! `diesel::sql_query` marks its statements unsafe to cache, so a statement written in SQL is
//! parsed again each time it runs, and on PostgreSQL prepared in a round trip of its own. The
//! claim runs every round: [`Prepared`] builds it from SQL pieces and typed binds, and lets
//! diesel cache it by its text like any query built with the DSL (one entry per text; the
//! claim's text depends only on the shape of what a worker serves).

use std::marker::PhantomData;

use diesel::backend::Backend;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::serialize::ToSql;
use diesel::sql_types::{HasSqlType, Untyped};
use diesel::{QueryResult, RunQueryDsl};

/// A statement of SQL pieces and typed binds, in order; each bind becomes the backend's
/// placeholder (`?`, `$1`).
pub(super) struct Prepared<'a, DB: Backend> {
    parts: Vec<Part<'a, DB>>,
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

impl<'a, DB: Backend> Prepared<'a, DB> {
    /// A statement starting with `sql`.
    pub(super) fn sql(sql: &'a str) -> Self {
        Prepared {
            parts: vec![Part::Sql(sql)],
        }
    }

    /// Appends `sql`.
    pub(super) fn then(mut self, sql: &'a str) -> Self {
        self.parts.push(Part::Sql(sql));
        self
    }

    /// Appends a placeholder bound to `value`, of SQL type `ST`.
    pub(super) fn bind<ST, T>(mut self, value: T) -> Self
    where
        DB: HasSqlType<ST>,
        T: ToSql<ST, DB> + Send + 'a,
        ST: 'a,
    {
        self.parts.push(Part::Bind(Box::new(Bind {
            value,
            sql_type: PhantomData,
        })));
        self
    }
}

impl<DB: Backend> QueryFragment<DB> for Prepared<'_, DB> {
    fn walk_ast<'b>(&'b self, mut pass: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        // Not `unsafe_to_cache_prepared`: the text alone decides the statement, and the
        // binds' types are part of diesel's cache key.
        for part in &self.parts {
            match part {
                Part::Sql(sql) => pass.push_sql(sql),
                Part::Bind(bind) => bind.walk_ast(pass.reborrow())?,
            }
        }
        Ok(())
    }
}

impl<DB: Backend> QueryId for Prepared<'_, DB> {
    type QueryId = ();
    // Keyed by its text, not its type: one type builds many statements.
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<DB: Backend> Query for Prepared<'_, DB> {
    type SqlType = Untyped;
}

impl<DB: Backend, C> RunQueryDsl<C> for Prepared<'_, DB> {}
