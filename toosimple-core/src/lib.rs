//! Background tasks for Rust, stored as rows in SQLite or PostgreSQL.
//!
//! Annotate a function with [`#[task]`](task), enqueue it with the generated `queue`
//! function, and run `app worker` (see the `toosimple-worker` crate) to execute it.
//!
//! ```no_run
//! use toosimple_core::{task, TaskHandle};
//!
//! #[task]
//! pub fn add(a: i64, b: i64) -> i64 {
//!     a + b
//! }
//!
//! # fn main() -> Result<(), toosimple_core::Error> {
//! let handle: TaskHandle<i64> = add::queue(2, 3)?; // a row in task_execs, state Queued
//! println!("enqueued as {}", handle.id());
//! # Ok(())
//! # }
//! ```
//!
//! # Defining tasks
//! [`task`] keeps the function callable as written and adds a same-named module with
//! `queue(args…)`, `queue_at(due, args…)`, `queue_many(iter of argument tuples)` and
//! `queue_in(conn, args…)` (inside the caller's own diesel transaction). Tasks are collected at
//! link time; [`tasks`] lists them. A binary must name a library crate that holds tasks
//! (`use my_tasks as _;`) for its tasks to be linked.
//!
//! # Storing executions
//! Each call is a [`TaskExec`] row. The database comes from `TOOSIMPLE_DATABASE_URL`
//! (`sqlite://path` or `postgres://…`, default `sqlite://toosimple.sqlite3`), or from [`init`].
//! Migrations run on first connect. A [`Store`] is one database's connection pool.
//!
//! # Following executions
//! A [`TaskHandle`] reads the row back, waits for the result, reads the progress a running
//! execution reported, or cancels it (pending: at once; running: its worker stops it);
//! [`TaskExec::get`] and [`TaskExec::list`] read rows by id or filter.
//!
//! # Flows
//! A [`Flow`] runs task calls one after another (each task's `call(args…)` describes one
//! without enqueuing it): each step is enqueued once the step before it succeeded, and a
//! failed step ends the flow, the later steps marked skipped. [`Flow::get`] and
//! [`Flow::find`] read a flow back by id or by name.
//!
//! # Progress and cancelling
//! A task that takes a [`TaskContext`] argument (given by the worker, never stored) reports
//! its [`Progress`] through it and sees a cancel asked while it runs.
//!
//! # Queues and their settings
//! Each queue can be paused, limited to a number of executions running at once across every
//! worker (1: serial), and given default retries and time limit for executions that set none:
//! see [`QueueSettings`] and [`Store::set_queue`].
//!
//! # Hooks
//! A [`#[hook]`](hook) function receives each finished execution of the tasks, calls or
//! schedules that name it, once its outcome is recorded; a worker's `error_hook` receives
//! every failure. See [`Hook`].
//!
//! # Signed payloads
//! With `TOOSIMPLE_SECRET_KEY` set (or [`Store::set_signing`]), each enqueued row carries an
//! HMAC-SHA256 of its task, arguments and options, and workers mark `Invalid` any row whose
//! signature does not verify instead of running it. See [`signing`].
//!
//! # Compressed arguments
//! With `TOOSIMPLE_COMPRESS=1` (or [`Store::set_compression`]), large arguments are stored
//! zstd-compressed and read back as plain JSON everywhere. See [`compression`].
//!
//! # Testing
//! [`testing::TestStore`] gives each test a database of its own as the default store, so that
//! tests of your tasks run under `cargo test`'s parallel threads.

#![warn(missing_docs)]

pub mod compression;
mod context;
mod counts;
mod cron;
mod enqueue;
mod error;
mod exec;
mod flow;
mod handle;
mod hook;
mod options;
#[cfg(feature = "otel")]
pub mod otel;
mod queue;
mod registry;
mod schedule;
mod schedule_exec;
pub mod schema;
pub mod signing;
mod state;
pub mod store;
mod stored_schedule;
pub mod testing;
mod ttl;
mod worker_status;

#[doc(hidden)]
pub mod __private;

/// Not API: what toosimple's own crates (the worker, mail, the tests) share with core beyond
/// the public surface. It changes in any release without notice; applications never name it.
#[doc(hidden)]
pub mod runtime {
    pub use crate::context::ExecControl;
    pub use crate::error::report;
    pub use crate::registry::{BoxFuture, Invoker, RunError, RunResult, require_tasks};
    pub use toosimple_cron::rotate_seconds;
}

pub use toosimple_macros::{hook, schedule, task};

pub use crate::context::{Progress, TaskContext};
pub use crate::counts::{Count, EXACT_COUNT_LIMIT, ExecCounts, StateCount};
pub use crate::cron::CronSchedule;
pub use crate::enqueue::{enqueue_by_name, enqueue_by_name_with};
pub use crate::error::{Error, Result};
pub use crate::exec::{Cancellation, QueueCount, TaskCount, TaskExec, TaskExecFilter};
pub use crate::flow::{Flow, FlowExec, FlowHandle, FlowState, FlowStep, StepState, TaskCall};
pub use crate::handle::TaskHandle;
pub use crate::hook::{Hook, find_hook, hooks};
pub use crate::options::{Call, CallOptions};
pub use crate::queue::{QueueChange, QueueSettings};
pub use crate::registry::{TaskDef, find_task, tasks};
pub use crate::schedule::{ScheduleDef, check_schedules, schedules};
pub use crate::schedule_exec::{ScheduleExec, ScheduleState};
pub use crate::signing::{SignedFields, Signing};
pub use crate::state::{ParseStateError, State};
pub use crate::store::{
    AnyConnection, Backend, DATABASE_URL_ENV, EnqueueConnection, Store, default_store, init,
};
pub use crate::stored_schedule::{Every, NewSchedule, StoredSchedule, Weekdays, Window};
pub use crate::ttl::Ttl;
pub use crate::worker_status::{
    EXIT_CRASHED, EXIT_STOPPED, EXIT_TERMINATED, StopRequest, WorkerState, WorkerStatus,
};

/// Enqueues schedule `name`'s task now on `store`, outside its cron (its `datetime_arg`, if
/// any, is `None`): django-toosimple-q's "force run".
pub fn run_schedule(store: &Store, name: &str) -> Result<TaskHandle<serde_json::Value>> {
    store.run_schedule(name)
}
