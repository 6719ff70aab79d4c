//! Background tasks for Rust, stored as rows in your database: SQLite by default, PostgreSQL
//! when many worker machines share one queue. This is the one crate an application adds.
//!
//! ```toml
//! [dependencies]
//! toosimple = "0.1"                                          # tasks, enqueueing, the worker
//! # toosimple = { version = "0.1", features = ["admin", "mail"] } # also the dashboard, email
//! ```
//!
//! ```no_run
//! use toosimple::task;
//!
//! #[task(queue = "emails", retries = 3, retry_delay = 2)]
//! fn welcome(email: String) -> Result<(), String> {
//!     println!("welcome, {email}!");
//!     Ok(())
//! }
//!
//! fn main() -> std::process::ExitCode {
//!     if std::env::args().len() == 1 {
//!         welcome::queue("ann@example.com".into()).expect("queued"); // a row, returns at once
//!         return std::process::ExitCode::SUCCESS;
//!     }
//!     toosimple::worker::main() // `app worker --until-done` runs what is queued
//! }
//! ```
//!
//! # Defining and enqueueing tasks
//! [`#[task]`](task) keeps the function callable and adds a same-named module with `queue`,
//! `queue_at`, `queue_many` and `queue_in` (inside your own diesel transaction);
//! [`#[schedule]`](schedule) enqueues it on a cron. Each call is a [`TaskExec`] row, followed
//! through a [`TaskHandle`]. A task that takes a [`TaskContext`] reports its [`Progress`] and
//! sees a cancel asked while it runs.
//!
//! # The database
//! `TOOSIMPLE_DATABASE_URL` (`sqlite://path`, `postgres://…`; default
//! `sqlite://toosimple.sqlite3`), or [`init`] once at start. [`Store`] is one database's pool.
//!
//! # Features
//! | feature | default | adds |
//! |---|---|---|
//! | `worker` | yes | [`worker`]: the worker runtime and the command line, `toosimple::worker::main()` |
//! | `admin` | no | `admin`: the web dashboard's axum `Router`, and the CLI's `admin` subcommand |
//! | `mail` | no | `mail`: queued email through lettre (`toosimple::mail::send`) |
//! | `full` | no | all of the above |
//! | `otel` | no | `otel`: traces through OpenTelemetry, a task's span the child of the span that queued it (not in `full`) |
//!
//! # Testing
//! [`testing::TestStore`] gives each test its own database as the default store, so that the
//! tests of your tasks run under `cargo test`'s parallel threads; `cargo run --example
//! quickstart` shows the whole round trip.

#![warn(missing_docs)]

pub use toosimple_core::{hook, schedule, task};

pub use toosimple_core::{
    AnyConnection, Backend, Call, CallOptions, Cancellation, CronSchedule, DATABASE_URL_ENV,
    EXIT_CRASHED, EXIT_STOPPED, EXIT_TERMINATED, EnqueueConnection, Error, Every, Flow, FlowExec,
    FlowHandle, FlowState, FlowStep, Hook, NewSchedule, ParseStateError, Progress, QueueChange,
    QueueCount, QueueSettings, Result, ScheduleDef, ScheduleExec, ScheduleState, SignedFields,
    Signing, State, StepState, StopRequest, Store, StoredSchedule, TaskCall, TaskContext,
    TaskCount, TaskDef, TaskExec, TaskExecFilter, TaskHandle, Weekdays, Window, WorkerState,
    WorkerStatus, check_schedules, default_store, enqueue_by_name, enqueue_by_name_with, find_hook,
    find_task, hooks, init, run_schedule, schedules, tasks,
};
pub use toosimple_core::{Count, EXACT_COUNT_LIMIT, ExecCounts, StateCount};
pub use toosimple_core::{compression, schema, signing, store, testing};

/// Traces through OpenTelemetry: the trace context stored at enqueue, and the OpenTelemetry
/// crates toosimple is built with.
#[cfg(feature = "otel")]
pub use toosimple_core::otel;

/// The date-time types of the API (`queue_at`'s due date, [`TaskExec`]'s times), so that an
/// application uses the same chrono.
pub use chrono;

/// The worker runtime and the manage-style command line (the `toosimple-worker` crate).
#[cfg(feature = "worker")]
pub use toosimple_worker as worker;

/// The web dashboard (the `toosimple-admin` crate).
#[cfg(feature = "admin")]
pub use toosimple_admin as admin;

/// Queued email through lettre (the `toosimple-mail` crate).
#[cfg(feature = "mail")]
pub use toosimple_mail as mail;

// What `#[task]` expands to when an application depends only on this crate: the macros find
// `toosimple` in its Cargo.toml and call `::toosimple::__private`.
#[doc(hidden)]
pub use toosimple_core::__private;
