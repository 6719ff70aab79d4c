//! `TaskExec`: one execution of a task, as stored in `task_execs`.

use chrono::{DateTime, Datelike, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::State;
use crate::context::Progress;
use crate::error::{Error, Result};
use crate::schema::task_execs::dsl as te;
use crate::store::to_completion::RunToCompletion;
use crate::store::{AnyConnection, Store, default_store};

/// One execution of a task: its arguments, where it is in its life, and how it ended.
///
/// Read one with [`TaskExec::get`] or a [`TaskHandle`](crate::TaskHandle), many with
/// [`TaskExec::list`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskExec {
    /// The row's id.
    pub id: i64,
    /// The registered task's name.
    pub task_name: String,
    /// The arguments, a JSON object keyed by parameter name. A row whose stored text is not
    /// JSON shows that text as a JSON string.
    pub args: Value,
    /// The queue it was sent to.
    pub queue: String,
    /// Its priority (higher runs first).
    pub priority: i32,
    /// Where it is in its life.
    pub state: State,
    /// When it may run.
    pub due: DateTime<Utc>,
    /// When it was enqueued.
    pub created: DateTime<Utc>,
    /// When a worker started it.
    pub started: Option<DateTime<Utc>>,
    /// When it ended.
    pub finished: Option<DateTime<Utc>>,
    /// The returned value, for a succeeded execution.
    pub result: Option<Value>,
    /// Why it failed, was interrupted or is invalid.
    pub error: Option<String>,
    /// Retries left after this execution (-1: forever).
    pub retries: i32,
    /// Seconds before the next retry; doubles after each failure.
    pub retry_delay: i64,
    /// The execution that replaced this one after a failure or interruption.
    pub replaced_by: Option<i64>,
    /// The label of the worker that ran it.
    pub worker: Option<String>,
    /// This call's time limit, when it set one ([`CallOptions::timeout`](crate::CallOptions::timeout)).
    pub timeout: Option<std::time::Duration>,
    /// How long it is kept once finished, when its call or its task set it
    /// ([`CallOptions::ttl`](crate::CallOptions::ttl)); `None`: the workers' default.
    pub ttl: Option<crate::Ttl>,
    /// The [`Hook`](crate::Hook) a worker calls once it has finished, by name: its call's, its
    /// schedule's or its task's.
    pub hook: Option<String>,
    /// When a worker called the hook.
    pub hook_ran: Option<DateTime<Utc>>,
    /// How the hook (or the worker's error hook) failed, when it did; the execution's own
    /// outcome is never changed by it.
    pub hook_error: Option<String>,
    /// The latest progress the task reported while it ran ([`TaskContext::progress`]), as its
    /// worker wrote it (at most once a second): kept once it ended.
    ///
    /// [`TaskContext::progress`]: crate::TaskContext::progress
    pub progress: Option<Progress>,
    /// When a cancel of this execution was asked while it ran ([`TaskExec::cancel_in`]): its
    /// worker stops it within a heartbeat, and records it `Cancelled`.
    pub cancel_requested: Option<DateTime<Utc>>,
    /// The [`Flow`](crate::Flow) this execution is a step of (its id), if any.
    pub flow: Option<i64>,
}

/// The row as diesel reads it, columns in `schema.rs` order.
#[derive(Queryable)]
#[allow(dead_code)] // unique_key, schedule, own_retries and trace_context: for the column order only
pub(crate) struct TaskExecRow {
    id: i64,
    task_name: String,
    args: String,
    queue: String,
    priority: i32,
    state: String,
    due: NaiveDateTime,
    created: NaiveDateTime,
    started: Option<NaiveDateTime>,
    pub(crate) finished: Option<NaiveDateTime>,
    result: Option<String>,
    error: Option<String>,
    retries: i32,
    retry_delay: i64,
    pub(crate) replaced_by: Option<i64>,
    worker: Option<String>,
    unique_key: Option<String>,
    schedule: Option<String>,
    timeout_ms: Option<i64>,
    result_ttl: Option<i64>,
    hook: Option<String>,
    hook_ran: Option<NaiveDateTime>,
    hook_error: Option<String>,
    signature: Option<String>,
    progress: Option<f64>,
    progress_message: Option<String>,
    cancel_requested: Option<NaiveDateTime>,
    flow_id: Option<i64>,
    own_retries: bool,
    trace_context: Option<String>,
}

impl TaskExecRow {
    /// Whether the row's signature verifies under `signing`'s keys (over the plain
    /// arguments, as they were signed before any compression).
    fn signature_verifies(&self, signing: &crate::Signing) -> bool {
        let args = crate::compression::decompress(&self.args);
        signing.verify(
            &crate::SignedFields {
                task_name: &self.task_name,
                args: &args,
                queue: &self.queue,
                priority: self.priority,
                timeout_ms: self.timeout_ms,
                result_ttl: self.result_ttl,
                hook: self.hook.as_deref(),
            },
            self.signature.as_deref(),
        )
    }
}

impl TryFrom<TaskExecRow> for TaskExec {
    type Error = Error;

    fn try_from(row: TaskExecRow) -> Result<TaskExec> {
        let state = row.state.parse::<State>().map_err(|e| Error::CorruptRow {
            id: row.id,
            reason: e.to_string(),
        })?;
        let json = |text: String| serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok(TaskExec {
            id: row.id,
            task_name: row.task_name,
            args: json(crate::compression::decompress(&row.args).into_owned()),
            queue: row.queue,
            priority: row.priority,
            state,
            due: row.due.and_utc(),
            created: row.created.and_utc(),
            started: row.started.map(|t| t.and_utc()),
            finished: row.finished.map(|t| t.and_utc()),
            result: row.result.map(json),
            error: row.error,
            retries: row.retries,
            retry_delay: row.retry_delay,
            replaced_by: row.replaced_by,
            worker: row.worker,
            timeout: row
                .timeout_ms
                .map(|ms| std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0))),
            ttl: row.result_ttl.map(crate::Ttl::from_seconds),
            hook: row.hook,
            hook_ran: row.hook_ran.map(|t| t.and_utc()),
            hook_error: row.hook_error,
            progress: Progress::from_columns(row.progress, row.progress_message),
            cancel_requested: row.cancel_requested.map(|t| t.and_utc()),
            flow: row.flow_id,
        })
    }
}

/// Which executions [`TaskExec::list`] returns: all filters must match; newest first.
///
/// ```
/// use toosimple_core::{State, TaskExecFilter};
/// let failed_mail = TaskExecFilter::default()
///     .state(State::Failed)
///     .task_name("mail.send")
///     .limit(20);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TaskExecFilter {
    /// Only these states (empty: any).
    pub states: Vec<State>,
    /// Only this queue.
    pub queue: Option<String>,
    /// Only this task.
    pub task_name: Option<String>,
    /// Only ids below this one: the next page after a page whose last id it is.
    pub before_id: Option<i64>,
    /// Skip this many matching rows (prefer `before_id` for deep pages).
    pub offset: i64,
    /// At most this many rows (default 100).
    pub limit: i64,
}

impl Default for TaskExecFilter {
    fn default() -> Self {
        TaskExecFilter {
            states: Vec::new(),
            queue: None,
            task_name: None,
            before_id: None,
            offset: 0,
            limit: 100,
        }
    }
}

impl TaskExecFilter {
    /// Adds a state to match.
    pub fn state(mut self, state: State) -> Self {
        self.states.push(state);
        self
    }

    /// Matches one queue.
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.queue = Some(queue.into());
        self
    }

    /// Matches one task name.
    pub fn task_name(mut self, name: impl Into<String>) -> Self {
        self.task_name = Some(name.into());
        self
    }

    /// Returns only rows older than `id` (keyset paging).
    pub fn before_id(mut self, id: i64) -> Self {
        self.before_id = Some(id);
        self
    }

    /// Skips `offset` rows.
    pub fn offset(mut self, offset: i64) -> Self {
        self.offset = offset;
        self
    }

    /// Returns at most `limit` rows.
    pub fn limit(mut self, limit: i64) -> Self {
        self.limit = limit;
        self
    }
}

impl TaskExec {
    /// Reads execution `id` from the default store.
    ///
    /// ```no_run
    /// let exec = toosimple_core::TaskExec::get(42)?;
    /// println!("{} is {}", exec.task_name, exec.state);
    /// # Ok::<(), toosimple_core::Error>(())
    /// ```
    pub fn get(id: i64) -> Result<TaskExec> {
        TaskExec::get_in(&default_store()?, id)
    }

    /// Reads execution `id` from `store`.
    pub fn get_in(store: &Store, id: i64) -> Result<TaskExec> {
        let row = store.autocommit(
            || format!("reading task execution {id}"),
            |c| find_row(c, id),
        )?;
        row.ok_or(Error::ExecNotFound { id })?.try_into()
    }

    /// Lists executions of the default store matching `filter`, newest first.
    pub fn list(filter: &TaskExecFilter) -> Result<Vec<TaskExec>> {
        TaskExec::list_in(&default_store()?, filter)
    }

    /// Lists executions of `store` matching `filter`, newest first.
    pub fn list_in(store: &Store, filter: &TaskExecFilter) -> Result<Vec<TaskExec>> {
        // No row holds a NUL in its queue or task name (PostgreSQL cannot store one, and both
        // come from Rust identifiers and literals), and PostgreSQL refuses one in a query: a
        // filter typed into the admin's search must find nothing, not fail.
        let names = [&filter.queue, &filter.task_name];
        if names
            .iter()
            .any(|n| n.as_ref().is_some_and(|n| n.contains('\0')))
        {
            return Ok(Vec::new());
        }
        let rows = store.autocommit(
            || "listing task executions".to_string(),
            |c| {
                let mut query = te::task_execs.into_boxed();
                if !filter.states.is_empty() {
                    query =
                        query.filter(te::state.eq_any(filter.states.iter().map(|s| s.as_str())));
                }
                if let Some(queue) = &filter.queue {
                    query = query.filter(te::queue.eq(queue));
                }
                if let Some(name) = &filter.task_name {
                    query = query.filter(te::task_name.eq(name));
                }
                if let Some(before) = filter.before_id {
                    query = query.filter(te::id.lt(before));
                }
                query
                    .order(te::id.desc())
                    .offset(filter.offset)
                    .limit(filter.limit)
                    .load::<TaskExecRow>(c)
            },
        )?;
        rows.into_iter().map(TaskExec::try_from).collect()
    }

    /// Cancels execution `id` of `store`: a pending one (`Sleeping` or `Queued`) is
    /// `Cancelled` at once; on a running one (`Processing`) a cancel request is recorded, which
    /// its worker reads back within a heartbeat: it aborts an async task at its next await
    /// point, sets the flag a sync task sees through [`TaskContext::is_cancelled`], and records
    /// the execution `Cancelled` (never retried). A finished execution is left as it is.
    ///
    /// [`TaskContext::is_cancelled`]: crate::TaskContext::is_cancelled
    pub fn cancel_in(store: &Store, id: i64) -> Result<Cancellation> {
        let now = crate::enqueue::now().naive_utc();
        let (pending, running) = store.autocommit(
            || format!("cancelling task execution {id}"),
            |c| {
                let pending = diesel::update(
                    te::task_execs
                        .find(id)
                        .filter(te::state.eq_any(State::PENDING.map(State::as_str))),
                )
                .set((
                    te::state.eq(State::Cancelled.as_str()),
                    te::finished.eq(now),
                ))
                .execute(c)?;
                if pending > 0 {
                    return Ok((pending, 0));
                }
                let running = diesel::update(
                    te::task_execs
                        .find(id)
                        .filter(te::state.eq(State::Processing.as_str()))
                        .filter(te::cancel_requested.is_null()),
                )
                .set(te::cancel_requested.eq(now))
                .execute(c)?;
                Ok((0, running))
            },
        )?;
        if pending == 1 {
            return Ok(Cancellation::Cancelled);
        }
        if running == 1 {
            return Ok(Cancellation::Requested);
        }
        // Tell a missing id apart from one already asked or finished.
        let exec = TaskExec::get_in(store, id)?;
        Ok(match exec.state {
            State::Processing => Cancellation::Requested,
            state => Cancellation::Finished(state),
        })
    }
}

/// What [`TaskExec::cancel_in`] (and [`TaskHandle::cancel`](crate::TaskHandle::cancel)) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancellation {
    /// It was pending: it is `Cancelled` now.
    Cancelled,
    /// It is running: a cancel request is recorded (now or earlier), and its worker stops it
    /// and records it `Cancelled` within a heartbeat.
    Requested,
    /// It had already ended in this state: nothing changed.
    Finished(State),
}

impl Cancellation {
    /// Whether the execution is (or will be) cancelled: not [`Finished`](Self::Finished).
    pub fn is_cancelled_or_requested(self) -> bool {
        !matches!(self, Cancellation::Finished(_))
    }
}

/// How many executions a queue has in one state, as `status` shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueCount {
    /// The queue.
    pub queue: String,
    /// The state.
    pub state: State,
    /// How many executions.
    pub count: i64,
    /// Whether `count` is an estimate (from [`TaskExec::view_counts_in`], for a state with
    /// more executions than the views count one by one).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub approximate: bool,
}

impl QueueCount {
    /// The count as a view shows it.
    pub fn shown(&self) -> crate::Count {
        crate::Count {
            n: self.count,
            approximate: self.approximate,
        }
    }
}

/// How many queued executions one task has in one queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskCount {
    /// The task's name.
    pub task: String,
    /// The queue.
    pub queue: String,
    /// How many executions.
    pub count: i64,
}

impl TaskExec {
    /// Counts the `Queued` executions of `store` per task and queue: what a worker checks
    /// against the tasks it links, to say which of them no worker of this binary can run.
    pub fn queued_per_task_in(store: &Store) -> Result<Vec<TaskCount>> {
        let rows: Vec<(String, String, i64)> = store.autocommit(
            || "counting queued executions per task".to_string(),
            |c| {
                te::task_execs
                    .filter(te::state.eq(State::Queued.as_str()))
                    .group_by((te::task_name, te::queue))
                    .select((te::task_name, te::queue, diesel::dsl::count_star()))
                    .order((te::task_name, te::queue))
                    .load(c)
            },
        )?;
        Ok(rows
            .into_iter()
            .map(|(task, queue, count)| TaskCount { task, queue, count })
            .collect())
    }

    /// Counts the `Queued` executions of `store` per task and queue, for the tasks not named
    /// in `known`: what a worker linking `known` will never run. It reads the queued rows of
    /// those tasks only: the task names come from a skip scan of the index on `task_name`
    /// (one seek per name), so a deep queue of known tasks costs nothing, where counting
    /// every queued row took a second per million at each worker's start.
    pub fn queued_of_other_tasks_in(store: &Store, known: &[&str]) -> Result<Vec<TaskCount>> {
        #[derive(diesel::QueryableByName)]
        struct Name {
            #[diesel(sql_type = diesel::sql_types::Text)]
            task_name: String,
        }
        let rows: Vec<(String, String, i64)> = store.autocommit(
            || "counting queued executions of tasks this binary does not link".to_string(),
            |c| {
                let others: Vec<String> = diesel::sql_query(
                    "WITH RECURSIVE names(task_name) AS (\
                     SELECT (SELECT task_name FROM task_execs ORDER BY task_name LIMIT 1) \
                     UNION ALL \
                     SELECT (SELECT t.task_name FROM task_execs AS t \
                             WHERE t.task_name > names.task_name ORDER BY t.task_name LIMIT 1) \
                     FROM names WHERE names.task_name IS NOT NULL) \
                     SELECT task_name FROM names WHERE task_name IS NOT NULL",
                )
                .load::<Name>(c)?
                .into_iter()
                .map(|n| n.task_name)
                .filter(|name| !known.contains(&name.as_str()))
                .collect();
                if others.is_empty() {
                    return Ok(Vec::new());
                }
                te::task_execs
                    .filter(te::task_name.eq_any(&others))
                    .filter(te::state.eq(State::Queued.as_str()))
                    .group_by((te::task_name, te::queue))
                    .select((te::task_name, te::queue, diesel::dsl::count_star()))
                    .order((te::task_name, te::queue))
                    .load(c)
            },
        )?;
        Ok(rows
            .into_iter()
            .map(|(task, queue, count)| TaskCount { task, queue, count })
            .collect())
    }

    /// Counts the `Queued` executions of `store` per task and queue whose task no online
    /// worker links (at `now`): they stay queued, as they should while a deploy rolls out, but
    /// nothing will run them until a worker that knows the task comes. Empty when no worker is
    /// online (nothing runs then anyway), or when an online worker did not say which tasks it
    /// links (a worker of a version before this list).
    pub fn unknown_to_online_workers_in(
        store: &Store,
        now: DateTime<Utc>,
    ) -> Result<Vec<TaskCount>> {
        let online: Vec<crate::WorkerStatus> = crate::WorkerStatus::list_in(store)?
            .into_iter()
            .filter(|w| w.state_at(now) == crate::WorkerState::Online)
            .collect();
        let mut known: Vec<&str> = Vec::new();
        for worker in &online {
            match &worker.tasks {
                Some(tasks) => known.extend(tasks.iter().map(String::as_str)),
                None => return Ok(Vec::new()),
            }
        }
        if online.is_empty() {
            return Ok(Vec::new());
        }
        TaskExec::queued_of_other_tasks_in(store, &known)
    }

    /// The earliest due time of a `Sleeping` execution of `store` (a retry waiting its
    /// delay, a task queued for later), `None` when none sleeps: one `MIN(due)`, read through
    /// the index that waking uses.
    pub fn next_due_in(store: &Store) -> Result<Option<DateTime<Utc>>> {
        let due: Option<NaiveDateTime> = store.autocommit(
            || "reading the next due time of a sleeping execution".to_string(),
            |c| {
                te::task_execs
                    // A literal, for the partial index `task_execs_wake`.
                    .filter(diesel::dsl::sql::<diesel::sql_types::Bool>(
                        "task_execs.state = 'sleeping'",
                    ))
                    .select(diesel::dsl::min(te::due))
                    .one_to_completion(c)
            },
        )?;
        Ok(due.map(|d| d.and_utc()))
    }

    /// Counts the `Processing` executions of `store` per worker label (through the partial
    /// index on running rows, whatever the size of the history): what each worker runs now.
    pub fn running_per_worker_in(store: &Store) -> Result<Vec<(String, i64)>> {
        let rows: Vec<(Option<String>, i64)> = store.autocommit(
            || "counting running executions per worker".to_string(),
            |c| {
                te::task_execs
                    .filter(te::state.eq(State::Processing.as_str()))
                    .group_by(te::worker)
                    .select((te::worker, diesel::dsl::count_star()))
                    .order(te::worker)
                    .load(c)
            },
        )?;
        Ok(rows
            .into_iter()
            .map(|(worker, n)| (worker.unwrap_or_default(), n))
            .collect())
    }

    /// Counts the executions of `store` per queue and state, exactly: it reads every row, which
    /// takes about half a second per million rows. The views use
    /// [`view_counts_in`](TaskExec::view_counts_in), which reads a bounded number.
    pub fn counts_in(store: &Store) -> Result<Vec<QueueCount>> {
        let rows: Vec<(String, String, i64)> = store.autocommit(
            || "counting task executions".to_string(),
            |c| {
                te::task_execs
                    .group_by((te::queue, te::state))
                    .select((te::queue, te::state, diesel::dsl::count_star()))
                    .order((te::queue, te::state))
                    .load(c)
            },
        )?;
        rows.into_iter()
            .map(|(queue, state, count)| {
                let state = state.parse::<State>().map_err(|e| Error::CorruptRow {
                    id: 0,
                    reason: format!("queue {queue}: {e}"),
                })?;
                Ok(QueueCount {
                    queue,
                    state,
                    count,
                    approximate: false,
                })
            })
            .collect()
    }

    /// Enqueues a new execution of the same task with the same arguments as execution `id`
    /// (as the admin's "requeue" action): the task's current options apply, and a unique task
    /// with an identical pending execution gives a handle to that one.
    ///
    /// With a signing key, a row whose signature does not verify is refused
    /// ([`Error::SignatureMismatch`]): the new row is signed, so copying a forged one would
    /// make it pass.
    pub fn requeue_in(store: &Store, id: i64) -> Result<crate::TaskHandle<Value>> {
        let row = store
            .autocommit(
                || format!("reading task execution {id}"),
                |c| find_row(c, id),
            )?
            .ok_or(Error::ExecNotFound { id })?;
        if let Some(signing) = store.signing()
            && !row.signature_verifies(&signing)
        {
            return Err(Error::SignatureMismatch { id });
        }
        let exec = TaskExec::try_from(row)?;
        crate::enqueue::enqueue_by_name(store, &exec.task_name, exec.args, None)
    }

    /// Deletes finished executions (in `states`, or any finished state when empty) that
    /// finished before `before`. Returns how many.
    pub fn purge_in(store: &Store, before: DateTime<Utc>, states: &[State]) -> Result<usize> {
        // Nothing finished before year 1, and a date before it is out of PostgreSQL's range
        // (4713 BC) or sorts wrongly as SQLite's text: `purge --older-than 3000000d` and the
        // admin's purge of 36,500,000 days deleted nothing with an error before.
        if before.year() < 1 {
            return Ok(0);
        }
        let states: Vec<&str> = if states.is_empty() {
            State::ALL
                .iter()
                .filter(|s| s.is_finished())
                .map(|s| s.as_str())
                .collect()
        } else {
            states.iter().map(|s| s.as_str()).collect()
        };
        store.write(
            || "purging finished task executions".to_string(),
            |c| {
                diesel::delete(
                    te::task_execs
                        .filter(te::state.eq_any(states))
                        .filter(te::finished.lt(before.naive_utc())),
                )
                .execute(c)
            },
        )
    }
}

impl TaskExec {
    /// Deletes up to `limit` finished executions whose TTL ([`Ttl`](crate::Ttl): their
    /// call's or their task's, else `default`) has run out at `now`, a retry chain from its
    /// end back (an execution stays while the one that replaced it does), none before its hook
    /// has run. Returns how many; the worker's retention pass calls it in batches.
    pub fn delete_expired_in(
        store: &Store,
        now: DateTime<Utc>,
        default: Option<crate::Ttl>,
        limit: usize,
    ) -> Result<usize> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut deleted = store.delete_expired(now.naive_utc(), limit)?;
        if let Some(crate::Ttl::After(ttl)) = default
            && (deleted as i64) < limit
        {
            let cutoff = chrono::TimeDelta::from_std(ttl)
                .ok()
                .and_then(|ttl| now.checked_sub_signed(ttl));
            if let Some(cutoff) = cutoff {
                deleted +=
                    store.delete_expired_by_default(cutoff.naive_utc(), limit - deleted as i64)?;
            }
        }
        Ok(deleted)
    }

    /// Deletes up to `limit` succeeded executions older than the `keep` newest successes
    /// (django-q's `Q_SAVE_LIMIT`): failures are always kept, and so are successes with a TTL
    /// of their own, those that ended a retry chain of earlier runs (the chain stays whole)
    /// and those whose hook has not run yet. `keep = 0` keeps them all. Returns how many.
    pub fn delete_over_save_limit_in(store: &Store, keep: u64, limit: usize) -> Result<usize> {
        if keep == 0 {
            return Ok(0);
        }
        let keep = i64::try_from(keep).unwrap_or(i64::MAX);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        store.delete_over_save_limit(keep, limit)
    }

    /// Deletes executions `ids` right after their outcome was recorded (a TTL of 0), those
    /// finished, not replaced by a remaining execution, and whose hook, if any, has run; an
    /// earlier run of their chain follows at the next retention pass. Returns how many. Not
    /// API: the worker calls it.
    #[doc(hidden)]
    pub fn delete_recorded_in(store: &Store, ids: &[i64]) -> Result<usize> {
        if ids.is_empty() {
            return Ok(0);
        }
        store.write(
            || format!("deleting {} executions with a TTL of 0", ids.len()),
            |c| {
                diesel::delete(
                    te::task_execs
                        .filter(te::id.eq_any(ids))
                        .filter(te::finished.is_not_null())
                        // An execution stays while its replacement does: a replacement that
                        // is deleted sets this back to NULL (ON DELETE SET NULL).
                        .filter(te::replaced_by.is_null())
                        .filter(te::hook.is_null().or(te::hook_ran.is_not_null()))
                        // A flow's executions go with the flow (the retention pass).
                        .filter(te::flow_id.is_null()),
                )
                .execute(c)
            },
        )
    }
}

pub(crate) fn find_row(c: &mut AnyConnection, id: i64) -> QueryResult<Option<TaskExecRow>> {
    te::task_execs
        .find(id)
        .optional_to_completion::<TaskExecRow>(c)
}
