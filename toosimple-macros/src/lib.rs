//! The `#[task]` and `#[schedule]` attributes of toosimple. Use them through `toosimple` (or
//! `toosimple_core`), which re-export them: the code they generate calls
//! `::toosimple_core::__private`, or `::toosimple::__private` when the caller depends only on
//! the facade (found in its `Cargo.toml`, renamed or not).
//!
//! The crate is split by phase: `attr` parses option lists (one table per attribute), `check`
//! validates the function, cron strings (with `toosimple_cron`, the runtime's own syntax) and
//! schedule arguments, `task` and `schedule` generate code. Every misuse is a spanned error, all
//! of them reported together; on error the function and its module are still emitted (the one
//! generator, run with the default options), so that the attribute's error is the only one.

#![warn(missing_docs)]

mod attr;
mod check;
#[cfg(test)]
mod fuzz;
mod hook;
mod krate;
mod schedule;
mod task;

use proc_macro::TokenStream;

/// Makes a function a background task: it stays callable as written, and a module of the same
/// name gains the API to enqueue it.
///
/// ```ignore
/// use toosimple_core::{task, TaskHandle};
///
/// #[task]                          // name "add", queue "default", priority 0, no retries
/// pub fn add(a: i64, b: i64) -> i64 {
///     a + b
/// }
///
/// #[task(name = "mail.send", queue = "emails", priority = 5, retries = 3, retry_delay = 2,
///        unique = true, timeout = 30)]
/// pub async fn send(to: String) -> Result<(), MailError> {
///     Ok(())
/// }
///
/// let h: TaskHandle<i64> = add::queue(2, 3)?;                        // Queued now
/// let later = add::queue_at(chrono::Utc::now() + chrono::Duration::hours(1), 2, 3)?;
/// let all = add::queue_many([(1, 2), (3, 4)])?;                     // one transaction
/// let inside = add::queue_in(&mut conn, 2, 3)?;                     // the caller's transaction
/// ```
///
/// # Options
/// All optional, as `key = value` separated by commas:
///
/// | option | type | default | meaning |
/// |---|---|---|---|
/// | `name` | string | the function's name | the name stored in each execution row; unique in the program |
/// | `queue` | string | `"default"` | workers choose the queues they serve |
/// | `priority` | integer (`i32`) | `0` | a higher number runs first; may be negative |
/// | `retries` | integer (`i32`) | `0` | how many times a failure is retried; `-1` retries forever |
/// | `retry_delay` | integer (seconds) | `0` | the delay before the first retry; it doubles after each failure |
/// | `unique` | `true`/`false` | `false` | at most one pending execution per distinct arguments |
/// | `timeout` | integer (seconds, ≥ 1) | none | a longer run fails as timed out |
/// | `hook` | path of a `#[hook]` fn | none | called with each finished execution (a call's `.hook(..)` replaces it) |
/// | `ttl` | integer (seconds, ≥ -1) | the workers' `--result-ttl` | how long a finished execution is kept: `0` deletes it once recorded, `-1` keeps it until purged |
///
/// # The function
/// A free `fn` or `async fn`, not generic, whose arguments are `name: Type` with owned types
/// that implement `Serialize` and `Deserialize` (`String`, not `&str`; `Vec<T>`, not `&[T]`): they
/// are stored as a JSON object keyed by parameter name. It returns nothing, a `T: Serialize`
/// (stored as the execution's result), or a `Result<T, E>` with `E: Display` (any path whose last
/// segment is `Result`, such as `anyhow::Result<T>` or `io::Result<T>`): `Err` fails the
/// execution, which is then retried per `retries`.
///
/// # Generated module
/// For `#[task] fn add(a: i64, b: i64) -> i64`, `mod add` (with the function's visibility) holds:
/// - `NAME: &str`, the task's name, and `type Output`, what the task returns (for
///   `Result<T, E>`: `T`), the value of `TaskHandle::wait`;
/// - `queue(a, b) -> Result<TaskHandle<Output>, Error>`: a `Queued` row in the default store;
/// - `queue_at(due, a, b)`: a `Sleeping` row, due at `due: DateTime<Utc>`;
/// - `queue_many(items)`: one row per `(a, b)` tuple (`(a,)` for one argument, `()` for none),
///   in one transaction;
/// - `queue_in(conn, a, b)` and `queue_at_in(conn, due, a, b)`: through `conn: &mut C` where
///   `C: EnqueueConnection` (such as `AnyConnection`), inside the caller's own transaction.
///
/// The definition is registered at link time: a binary must link the crate that defines its
/// tasks (`use my_tasks as _;`).
#[proc_macro_attribute]
pub fn task(attr: TokenStream, item: TokenStream) -> TokenStream {
    task::expand(attr.into(), item.into()).into()
}

/// Makes a function a hook: a registered function that a worker calls with each finished
/// execution of the tasks, calls and schedules that name it (django-q's `hook=`).
///
/// ```ignore
/// use toosimple_core::{hook, task, TaskExec};
///
/// #[hook]
/// fn notify(exec: &TaskExec) -> Result<(), String> {
///     println!("{} is {}", exec.task_name, exec.state);
///     Ok(())
/// }
///
/// #[task(hook = notify)]
/// fn send(to: String) {}
///
/// send::with().hook(notify::HOOK).queue("ann".to_string())?; // a call may name another
/// ```
///
/// The function takes `&TaskExec` (the execution as recorded: any end state) and returns
/// nothing or a `Result<(), E>` with `E: Display`. It is a plain `fn`, run on a blocking thread
/// after the outcome is committed; an `Err` or a panic is logged and kept in the execution's
/// `hook_error`, never changing its state. A module of the same name holds `NAME` and `HOOK`
/// (a `toosimple_core::Hook`), which `#[task(hook = f)]`, `#[schedule(hook = f)]` and
/// `.hook(f::HOOK)` name.
///
/// # Options
/// | option | type | default | meaning |
/// |---|---|---|---|
/// | `name` | string | the function's name | the name rows store; unique in the program |
#[proc_macro_attribute]
pub fn hook(attr: TokenStream, item: TokenStream) -> TokenStream {
    hook::expand(attr.into(), item.into()).into()
}

/// Enqueues a `#[task]` function periodically, following a cron expression. Stack it with
/// `#[task]`, above or below it; several schedules (with distinct names) may share one task.
///
/// ```ignore
/// use toosimple_core::{schedule, task};
/// use chrono::{DateTime, Utc};
///
/// #[schedule(cron = "30 8 * * *", args = ("John".to_string(),))]
/// #[task]
/// pub fn morning(name: String) -> String {
///     format!("Good morning {name} !")
/// }
///
/// #[task]
/// #[schedule(name = "report.quarter-hourly", cron = "*/15 * * * *", datetime_arg = "at",
///            catch_up = true, tz = "Europe/Paris")]
/// #[schedule(name = "report.manual", cron = "manual", datetime_arg = "at")]
/// pub fn report(at: Option<DateTime<Utc>>) {}
/// ```
///
/// # Options
///
/// | option | type | default | meaning |
/// |---|---|---|---|
/// | `cron` | string | required | 5 fields (minute hour day-of-month month day-of-week), an optional 6th for seconds (`"* * * * * */15"`: every 15 s), a `@daily`-style nickname, or `"manual"` (never due: only run when triggered); checked at compile time |
/// | `name` | string | the task's name | the schedule's unique name |
/// | `args` | tuple | `()` | the task's arguments, in order, leaving out the `datetime_arg` one; type-checked against the function |
/// | `queue` | string | its task's queue | only workers serving this queue materialize the schedule |
/// | `run_on_creation` | `true`/`false` | `false` | run the latest occurrence when the schedule is first seen |
/// | `catch_up` | `true`/`false` | `false` | enqueue every missed occurrence, not only the latest |
/// | `datetime_arg` | string | none | the parameter (of type `Option<DateTime<Utc>>`) that receives the occurrence's date |
/// | `tz` | string | `"UTC"` | the IANA time zone the cron expression is read in |
/// | `hook` | path of a `#[hook]` fn | its task's | called with each finished execution it enqueued |
/// | `seconds_last` | `true` | none | says that a six-field `cron` whose 6th field is `*` means what it says (every second, seconds last) and not a seconds-first `"*/15 * * * * *"` (every 15 s to Quartz): without it that shape is a compile error showing both readings; `"*/15 * * * * 0-59"` says the same without the option |
#[proc_macro_attribute]
pub fn schedule(attr: TokenStream, item: TokenStream) -> TokenStream {
    schedule::expand(attr.into(), item.into()).into()
}
