//! Turning a task call into a `task_execs` row.

use chrono::{DateTime, DurationRound, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::options::CallOptions;
use crate::registry::{TaskDef, find_task};
use crate::store::{EnqueueConnection, NewTaskExec, Store, default_store};
use crate::{State, TaskHandle};

/// The current time at the precision both backends keep (PostgreSQL stores microseconds), so
/// that a value read back equals the one written.
pub(crate) fn now() -> DateTime<Utc> {
    let now = Utc::now();
    now.duration_trunc(chrono::TimeDelta::microseconds(1))
        .unwrap_or(now)
}

/// JSON text with object keys sorted at every depth, so that equal arguments give equal text
/// whatever order they were built in.
pub(crate) fn canonical_json(value: &Value) -> String {
    fn sorted(value: &Value) -> Value {
        match value {
            Value::Object(map) => {
                let mut entries: Vec<(&String, &Value)> = map.iter().collect();
                entries.sort_by(|a, b| a.0.cmp(b.0));
                Value::Object(
                    entries
                        .into_iter()
                        .map(|(k, v)| (k.clone(), sorted(v)))
                        .collect(),
                )
            }
            Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    sorted(value).to_string()
}

/// The key of a unique task's pending execution: a digest keeps the index entry small
/// whatever the size of the arguments (PostgreSQL rejects index entries over ~2.7 kB).
fn unique_key(task: &str, args_json: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(task.as_bytes());
    hasher.update([0]);
    hasher.update(args_json.as_bytes());
    let digest = hasher.finalize();
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The row for one call of `def` with `args`; `due: None` means now, `Queued`.
pub(crate) fn new_row(def: &TaskDef, args: &Value, due: Option<DateTime<Utc>>) -> NewTaskExec {
    let options = due.map_or_else(CallOptions::new, |due| CallOptions::new().at(due));
    new_row_with(def, args, &options).expect("a task's own options are valid")
}

/// The row for one call of `def` with `args` and `options` over the task's own.
pub(crate) fn new_row_with(
    def: &TaskDef,
    args: &Value,
    options: &CallOptions,
) -> Result<NewTaskExec> {
    let now = now();
    let resolved = options.resolve(def)?;
    let args_json = canonical_json(args);
    let due = options.due(now);
    Ok(NewTaskExec {
        task_name: def.name().to_string(),
        unique_key: def.is_unique().then(|| unique_key(def.name(), &args_json)),
        args: args_json,
        queue: resolved.queue,
        priority: resolved.priority,
        state: if due.is_some() {
            State::Sleeping.as_str()
        } else {
            State::Queued.as_str()
        },
        due: due
            .map_or(now, |d| {
                d.duration_trunc(chrono::TimeDelta::microseconds(1))
                    .unwrap_or(d)
            })
            .naive_utc(),
        created: now.naive_utc(),
        retries: resolved.retries,
        retry_delay: resolved.retry_delay,
        replaced_by: None,
        schedule: None,
        timeout_ms: resolved.timeout_ms,
        result_ttl: resolved.result_ttl,
        hook: resolved.hook,
        signature: None,
        flow_id: None,
        own_retries: resolved.own_retries,
        // Set once per call by `enqueue_rows`, not per row.
        #[cfg(feature = "otel")]
        trace_context: None,
    })
}

fn enqueue_action(def: &TaskDef) -> impl FnOnce() -> String {
    let name = def.name();
    move || format!("enqueueing task `{name}`")
}

/// What a full database means to the caller of an enqueue: nothing of the call was stored.
fn not_queued(count: usize) -> String {
    if count == 1 {
        "the task was not queued".to_string()
    } else {
        format!("none of the {count} tasks was queued")
    }
}

/// Says, on a full database, that the call's tasks were not queued (the store's message says
/// only that nothing was stored).
fn say_not_queued(mut error: Error, count: usize) -> Error {
    if let Error::DatabaseFull { consequence, .. } = &mut error {
        *consequence = not_queued(count);
    }
    error
}

/// Enqueues executions of `def` into `store`, in one transaction.
pub(crate) fn enqueue_rows<T>(
    store: &Store,
    def: &'static TaskDef,
    rows: &mut [NewTaskExec],
) -> Result<Vec<TaskHandle<T>>> {
    // Fails when two tasks share this name, before anything is written.
    crate::registry::tasks()?;
    store.seal(rows);
    #[cfg(feature = "otel")]
    crate::otel::stamp(rows);
    let rows = &*rows;
    let enqueued = if let [row] = rows
        && row.unique_key.is_none()
    {
        store.autocommit(enqueue_action(def), |c| c.__enqueue(rows))
    } else {
        store.write(enqueue_action(def), |c| c.__enqueue(rows))
    }
    .map_err(|e| say_not_queued(e, rows.len()))?;
    // A test's inline mode runs what is due now, here, before `queue()` returns; a thread
    // without it pays one thread-local read.
    if crate::testing::inline_runner().is_some() {
        let due_now: Vec<i64> = enqueued
            .iter()
            .zip(rows)
            .filter(|(e, row)| !e.duplicate && row.state == State::Queued.as_str())
            .map(|(e, _)| e.id)
            .collect();
        crate::testing::run_inline(store, &due_now)?;
    }
    Ok(enqueued
        .into_iter()
        .map(|e| TaskHandle::enqueued(Some(store.clone()), e.id, e.duplicate))
        .collect())
}

/// Enqueues a task by name with JSON arguments, as the CLI and schedules do.
///
/// `args` must be a JSON object keyed by the task's parameter names; the worker checks it
/// against the function's types when it runs.
pub fn enqueue_by_name(
    store: &Store,
    task: &str,
    args: Value,
    due: Option<DateTime<Utc>>,
) -> Result<TaskHandle<Value>> {
    let options = due.map_or_else(CallOptions::new, |due| CallOptions::new().at(due));
    enqueue_by_name_with(store, task, args, &options)
}

/// [`enqueue_by_name`] with [`CallOptions`] over the task's own (the CLI's `enqueue --queue
/// … --timeout …`).
///
/// # Errors
/// Fails when no linked task has that name, when the options cannot be honoured
/// ([`Error::InvalidOptions`]), or when the database cannot store the row.
pub fn enqueue_by_name_with(
    store: &Store,
    task: &str,
    args: Value,
    options: &CallOptions,
) -> Result<TaskHandle<Value>> {
    let def = find_task(task)?;
    let mut row = new_row_with(def, &args, options)?;
    let mut handles = enqueue_rows(store, def, std::slice::from_mut(&mut row))?;
    Ok(handles.remove(0))
}

/// What the `#[task]` macro's generated code calls. Not a stable API.
#[doc(hidden)]
pub mod __private {
    use super::*;

    pub fn enqueue<T>(
        def: &'static TaskDef,
        args: Result<Value>,
        due: Option<DateTime<Utc>>,
    ) -> Result<TaskHandle<T>> {
        enqueue_with(def, args, &due_options(due))
    }

    pub fn enqueue_with<T>(
        def: &'static TaskDef,
        args: Result<Value>,
        options: &CallOptions,
    ) -> Result<TaskHandle<T>> {
        let store = default_store()?;
        let mut row = new_row_with(def, &args?, options)?;
        let mut handles = enqueue_rows(&store, def, std::slice::from_mut(&mut row))?;
        Ok(handles.remove(0))
    }

    pub fn enqueue_many<T>(
        def: &'static TaskDef,
        args: impl Iterator<Item = Result<Value>>,
    ) -> Result<Vec<TaskHandle<T>>> {
        enqueue_many_with(def, args, &CallOptions::new())
    }

    pub fn enqueue_many_with<T>(
        def: &'static TaskDef,
        args: impl Iterator<Item = Result<Value>>,
        options: &CallOptions,
    ) -> Result<Vec<TaskHandle<T>>> {
        let store = default_store()?;
        let mut rows = args
            .map(|a| new_row_with(def, &a?, options))
            .collect::<Result<Vec<_>>>()?;
        enqueue_rows(&store, def, &mut rows)
    }

    pub fn enqueue_in<T, C: EnqueueConnection + ?Sized>(
        conn: &mut C,
        def: &'static TaskDef,
        args: Result<Value>,
        due: Option<DateTime<Utc>>,
    ) -> Result<TaskHandle<T>> {
        enqueue_in_with(conn, def, args, &due_options(due))
    }

    pub fn enqueue_in_with<T, C: EnqueueConnection + ?Sized>(
        conn: &mut C,
        def: &'static TaskDef,
        args: Result<Value>,
        options: &CallOptions,
    ) -> Result<TaskHandle<T>> {
        crate::registry::tasks()?;
        let mut row = new_row_with(def, &args?, options)?;
        // No store here: the default store's keys and compression, or the environment's.
        crate::store::seal_ambient(std::slice::from_mut(&mut row));
        #[cfg(feature = "otel")]
        crate::otel::stamp(std::slice::from_mut(&mut row));
        let enqueued = match conn.__enqueue(std::slice::from_ref(&row)) {
            Ok(enqueued) => enqueued,
            Err(source) => {
                return Err(Error::write_failed(
                    enqueue_action(def)(),
                    || conn.__location(),
                    |_| not_queued(1),
                    source,
                ));
            }
        };
        Ok(TaskHandle::enqueued(
            None,
            enqueued[0].id,
            enqueued[0].duplicate,
        ))
    }

    fn due_options(due: Option<DateTime<Utc>>) -> CallOptions {
        due.map_or_else(CallOptions::new, |due| CallOptions::new().at(due))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_sorts_nested_keys() {
        let a: Value =
            serde_json::from_str(r#"{"b":1,"a":{"y":[{"d":1,"c":2}],"x":null}}"#).unwrap();
        assert_eq!(
            canonical_json(&a),
            r#"{"a":{"x":null,"y":[{"c":2,"d":1}]},"b":1}"#
        );
    }

    #[test]
    fn unique_key_depends_on_task_and_args() {
        assert_eq!(unique_key("t", "{}"), unique_key("t", "{}"));
        assert_ne!(unique_key("t", "{}"), unique_key("u", "{}"));
        assert_ne!(unique_key("t", r#"{"a":1}"#), unique_key("t", r#"{"a":2}"#));
    }
}
