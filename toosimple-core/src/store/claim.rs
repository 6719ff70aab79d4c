//! Taking work: waking due sleeping rows and claiming queued ones.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;

use super::driver::driver;
use super::{AnyConnection, Store};
use crate::error::Result;
use crate::schema::task_execs::dsl as te;
use crate::{QueueSettings, State};

/// Which queues a worker serves.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum QueueSelection {
    /// Every queue.
    #[default]
    All,
    /// Only these.
    Only(Vec<String>),
    /// Every queue but these.
    Except(Vec<String>),
}

impl QueueSelection {
    /// Whether `queue` is served.
    pub fn includes(&self, queue: &str) -> bool {
        match self {
            QueueSelection::All => true,
            QueueSelection::Only(queues) => queues.iter().any(|q| q == queue),
            QueueSelection::Except(queues) => !queues.iter().any(|q| q == queue),
        }
    }
}

/// What a worker asks for when it claims.
#[derive(Debug, Clone)]
pub struct ClaimRequest<'a> {
    /// The claiming worker's label, stored in `worker`.
    pub worker: &'a str,
    /// The task names it can run: rows of other tasks are left for workers that know them.
    pub task_names: &'a [&'a str],
    /// The queues it serves.
    pub queues: &'a QueueSelection,
    /// At most this many rows (its free slots).
    pub limit: usize,
    /// The time written as `started`.
    pub now: DateTime<Utc>,
    /// The settings of the configured queues, as the worker read them at its last tick. Empty
    /// (no queue configured, or none with settings but the defaults): the claim is the
    /// drivers' own, with no statement more.
    pub settings: &'a [QueueSettings],
    /// Claims from `queues` (an [`Only`](QueueSelection::Only)) in the order listed: all it
    /// can of the first before the second, and so on (django-pq's queue priority).
    pub in_order: bool,
}

/// A row a worker claimed (now `Processing`), with what running and replacing it needs.
#[derive(Debug, Clone, PartialEq, Queryable, QueryableByName, Selectable)]
#[diesel(table_name = crate::schema::task_execs)]
pub struct ClaimedExec {
    /// The row's id.
    pub id: i64,
    /// The task's name.
    pub task_name: String,
    /// The arguments as stored: JSON text that the worker decodes (and may find corrupt).
    pub args: String,
    /// The row's queue.
    pub queue: String,
    /// The row's priority.
    pub priority: i32,
    /// Its due time (UTC).
    pub due: NaiveDateTime,
    /// Retries left (-1: forever).
    pub retries: i32,
    /// The next retry's delay, seconds.
    pub retry_delay: i64,
    /// A unique task's key.
    pub unique_key: Option<String>,
    /// This call's time limit, milliseconds (`None`: the task's).
    pub timeout_ms: Option<i64>,
    /// How long the finished row is kept, seconds (`None`: until purged).
    pub result_ttl: Option<i64>,
    /// The hook the worker calls once the outcome is recorded, by name.
    pub hook: Option<String>,
    /// The row's signature, checked before it runs by a worker with a key.
    pub signature: Option<String>,
    /// The flow it is a step of: recording its outcome advances that flow.
    pub flow_id: Option<i64>,
    /// Whether `retries` are its own, not the default its queue's settings replace.
    pub own_retries: bool,
    /// The W3C trace context of the span that enqueued it (the `otel` feature): its
    /// `traceparent`, then a newline and its `tracestate` when it has one. Read whatever the
    /// features: a NULL column costs next to nothing, and the claim's column list stays one
    /// for the three backends' SQL.
    pub trace_context: Option<String>,
}

/// The SQL types of [`CLAIMED_SQL`], to load claimed rows by position.
pub(super) type ClaimedSqlType = (
    diesel::sql_types::BigInt,
    diesel::sql_types::Text,
    diesel::sql_types::Text,
    diesel::sql_types::Text,
    diesel::sql_types::Integer,
    diesel::sql_types::Timestamp,
    diesel::sql_types::Integer,
    diesel::sql_types::BigInt,
    diesel::sql_types::Nullable<diesel::sql_types::Text>,
    diesel::sql_types::Nullable<diesel::sql_types::BigInt>,
    diesel::sql_types::Nullable<diesel::sql_types::BigInt>,
    diesel::sql_types::Nullable<diesel::sql_types::Text>,
    diesel::sql_types::Nullable<diesel::sql_types::Text>,
    diesel::sql_types::Nullable<diesel::sql_types::BigInt>,
    diesel::sql_types::Bool,
    diesel::sql_types::Nullable<diesel::sql_types::Text>,
);

/// The columns a claim returns, as SQL, in [`ClaimedExec`]'s order.
pub(super) const CLAIMED_SQL: &str = "id, task_name, args, queue, priority, due, retries, retry_delay, unique_key, timeout_ms, \
     result_ttl, hook, signature, flow_id, own_retries, trace_context";

pub(super) type ClaimedColumns = (
    te::id,
    te::task_name,
    te::args,
    te::queue,
    te::priority,
    te::due,
    te::retries,
    te::retry_delay,
    te::unique_key,
    te::timeout_ms,
    te::result_ttl,
    te::hook,
    te::signature,
    te::flow_id,
    te::own_retries,
    te::trace_context,
);

pub(super) const CLAIMED_COLUMNS: ClaimedColumns = (
    te::id,
    te::task_name,
    te::args,
    te::queue,
    te::priority,
    te::due,
    te::retries,
    te::retry_delay,
    te::unique_key,
    te::timeout_ms,
    te::result_ttl,
    te::hook,
    te::signature,
    te::flow_id,
    te::own_retries,
    te::trace_context,
);

/// Claims per `request` through the backend's driver; nothing to claim asks nothing of the
/// database.
pub(super) fn claim(
    c: &mut AnyConnection,
    request: &ClaimRequest<'_>,
) -> QueryResult<Vec<ClaimedExec>> {
    if request.limit == 0 || request.task_names.is_empty() {
        return Ok(Vec::new());
    }
    let mut claimed = if request.settings.is_empty() && !request.in_order {
        driver(c).claim(request)?
    } else {
        super::queues::claim_with_settings(c, request)?
    };
    // Compressed arguments reach the worker (and its signature check) as plain JSON.
    claimed.iter_mut().for_each(crate::compression::inflate);
    Ok(claimed)
}

/// Sorts claimed rows as the claim chose them (highest priority, then oldest due, then
/// oldest id): `RETURNING` gives them in no particular order.
pub(super) fn in_claim_order(claimed: &mut [ClaimedExec]) {
    claimed.sort_by(|a, b| {
        b.priority
            .cmp(&a.priority)
            .then(a.due.cmp(&b.due))
            .then(a.id.cmp(&b.id))
    });
}

pub(super) fn wake(c: &mut AnyConnection, now: DateTime<Utc>) -> QueryResult<usize> {
    diesel::update(
        te::task_execs
            // A literal, for the partial index `task_execs_wake` (see the claim).
            .filter(diesel::dsl::sql::<diesel::sql_types::Bool>(
                "task_execs.state = 'sleeping'",
            ))
            .filter(te::due.le(now.naive_utc())),
    )
    .set(te::state.eq(State::Queued.as_str()))
    .execute(c)
}

/// The columns of a claimed row set back as before its claim: queued, never started, no
/// worker.
#[allow(clippy::type_complexity)]
fn unclaimed() -> (
    diesel::dsl::Eq<te::state, &'static str>,
    diesel::dsl::Eq<te::started, Option<NaiveDateTime>>,
    diesel::dsl::Eq<te::worker, Option<String>>,
) {
    (
        te::state.eq(State::Queued.as_str()),
        te::started.eq(None),
        te::worker.eq(None),
    )
}

impl Store {
    /// Moves `Sleeping` rows whose due has come to `Queued`. Returns how many.
    pub fn wake(&self, now: DateTime<Utc>) -> Result<usize> {
        self.autocommit(|| "waking due sleeping tasks".to_string(), |c| wake(c, now))
    }

    /// Puts back in the queue the rows `worker` holds as `Processing` but is not running
    /// (`running`): claims whose commit succeeded while the worker saw an error (a connection
    /// lost at commit), which would otherwise wait for a rescue that never comes, since a live
    /// worker is never rescued. Returns how many.
    pub fn release_unheld(&self, worker: &str, running: &[i64]) -> Result<usize> {
        self.autocommit(
            || format!("releasing the unheld claims of worker {worker}"),
            |c| {
                diesel::update(
                    te::task_execs
                        .filter(te::state.eq(State::Processing.as_str()))
                        .filter(te::worker.eq(worker))
                        .filter(te::id.ne_all(running)),
                )
                .set(unclaimed())
                .execute(c)
            },
        )
    }

    /// Puts back in the queue the rows `ids` that `worker` claimed but never started (its
    /// claim-ahead buffer, handed back at a stop), as if never claimed: unlike an
    /// interruption, no run began, so nothing is recorded and no replacement is made. Rows
    /// no longer `Processing` under `worker` are left alone. Returns how many.
    pub fn release_claims(&self, worker: &str, ids: &[i64]) -> Result<usize> {
        if ids.is_empty() {
            return Ok(0);
        }
        self.autocommit(
            || format!("handing back the unstarted claims of worker {worker}"),
            |c| {
                diesel::update(
                    te::task_execs
                        .filter(te::state.eq(State::Processing.as_str()))
                        .filter(te::worker.eq(worker))
                        .filter(te::id.eq_any(ids)),
                )
                .set(unclaimed())
                .execute(c)
            },
        )
    }

    /// Atomically claims up to `request.limit` queued rows, highest priority first, then
    /// oldest due: each row is claimed by exactly one worker however many claim at once.
    pub fn claim(&self, request: &ClaimRequest<'_>) -> Result<Vec<ClaimedExec>> {
        self.write(|| "claiming tasks".to_string(), |c| claim(c, request))
    }
}
