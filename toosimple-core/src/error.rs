use std::path::PathBuf;
use std::time::Duration;

use crate::State;

/// Everything that can go wrong when defining, enqueueing or reading tasks.
///
/// Messages name the thing involved (the task, the execution id, the database URL with its
/// password hidden) and, where there is one, what to do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The database URL's scheme is not one toosimple speaks.
    #[error(
        "unsupported database URL {url:?}: use sqlite://path/to/file.sqlite3, postgres://user:password@host:port/database or mysql://user:password@host:port/database"
    )]
    UnsupportedUrl {
        /// The URL, password hidden.
        url: String,
    },

    /// The folder meant to hold the SQLite file does not exist.
    #[error(
        "cannot open SQLite database {path:?}: the folder {folder:?} does not exist; create it or point TOOSIMPLE_DATABASE_URL elsewhere"
    )]
    SqliteFolderMissing {
        /// The database file.
        path: PathBuf,
        /// Its missing parent folder.
        folder: PathBuf,
    },

    /// A command that reads existing executions was pointed at a SQLite file that does not
    /// exist (see [`Store::connect_existing`](crate::Store::connect_existing)).
    #[error(
        "there is no database at {location}: a worker, `enqueue` or `migrate` creates it; is this the path your app uses (TOOSIMPLE_DATABASE_URL or --database-url, relative to the working directory)?"
    )]
    NoDatabase {
        /// The SQLite file's absolute path.
        location: String,
    },

    /// [`init`](crate::init) was called again with another database than the default store's.
    #[error(
        "the default store is already {current}; init({requested}) would send the next enqueues to another database: call init once, at start (tests: one toosimple_core::testing::TestStore per test)"
    )]
    AlreadyInitialized {
        /// The default store's URL (set by an earlier `init`, or on first use from
        /// `TOOSIMPLE_DATABASE_URL`), password hidden.
        current: String,
        /// The URL given to this `init`, password hidden.
        requested: String,
    },

    /// The database refused or could not be reached. The message carries the server's reason.
    #[error("cannot connect to {url}: {reason}")]
    Connect {
        /// The URL, password hidden.
        url: String,
        /// What the database driver said.
        reason: String,
    },

    /// No connection could be taken from the pool in time.
    #[error("no database connection available for {url}: {source}")]
    Pool {
        /// The URL, password hidden.
        url: String,
        /// Why the pool gave up (it includes the last connection error).
        #[source]
        source: r2d2::Error,
    },

    /// Applying the embedded migrations failed.
    #[error("cannot migrate the database {url}: {reason}")]
    Migrate {
        /// The URL, password hidden.
        url: String,
        /// What failed.
        reason: String,
    },

    /// A query failed.
    #[error("database error while {action}: {source}")]
    Query {
        /// What toosimple was doing, e.g. "enqueueing task `add`".
        action: String,
        /// The database's error.
        #[source]
        source: diesel::result::Error,
    },

    /// The database has no room left (a full disk, a full tmpfs, a PostgreSQL tablespace out
    /// of space): what was being written was not stored, and nothing of it is half-written.
    ///
    /// Match on it to tell a user to free space; retrying once there is room succeeds.
    #[error("the database at {location} is full ({code}): {consequence}; free space and retry")]
    DatabaseFull {
        /// The SQLite file's absolute path, or the PostgreSQL URL with its password hidden.
        location: String,
        /// The database's name for the condition, e.g. `SQLITE_FULL`.
        code: &'static str,
        /// What did not happen, e.g. "the task was not queued".
        consequence: String,
        /// The database's error.
        #[source]
        source: diesel::result::Error,
    },

    /// No `task_execs` row has this id.
    #[error("no task execution with id {id}")]
    ExecNotFound {
        /// The id asked for.
        id: i64,
    },

    /// A row holds something toosimple cannot read.
    #[error("task execution {id} is corrupt: {reason}")]
    CorruptRow {
        /// The row's id.
        id: i64,
        /// What is wrong with it.
        reason: String,
    },

    /// A signed row's signature does not verify under this store's key: it is not copied
    /// into a new, freshly signed row (which would launder a forged one).
    #[error(
        "task execution {id} is not requeued: {}; requeue it with the key that signed it, or enqueue the call anew",
        crate::signing::SIGNATURE_MISMATCH
    )]
    SignatureMismatch {
        /// The row's id.
        id: i64,
    },

    /// A task argument could not be encoded as JSON.
    #[error("cannot encode argument `{arg}` of task `{task}` as JSON: {source}")]
    EncodeArg {
        /// The task.
        task: String,
        /// The argument's name.
        arg: String,
        /// serde_json's error.
        #[source]
        source: serde_json::Error,
    },

    /// Arguments given by name (the CLI's `enqueue`) do not fit the task's parameter types.
    #[error("invalid arguments for task `{task}`: {reason}; nothing was enqueued")]
    InvalidArgs {
        /// The task.
        task: String,
        /// What does not fit, as the worker would have said it.
        reason: String,
    },

    /// A call's options ([`CallOptions`](crate::CallOptions)) cannot be honoured.
    #[error("invalid options for task `{task}`: {reason}; nothing was enqueued")]
    InvalidOptions {
        /// The task.
        task: String,
        /// What is wrong and what to write instead.
        reason: String,
    },

    /// A finished task's result does not decode into the type the handle expects.
    #[error("cannot decode the result of task execution {id}: {source}")]
    DecodeResult {
        /// The execution.
        id: i64,
        /// serde_json's error.
        #[source]
        source: serde_json::Error,
    },

    /// No task with this name is linked into the program.
    #[error("task `{name}` is not registered in this binary: is the crate that defines it linked (`use my_tasks as _;`)? Registered tasks: {}", list_or_none(.known))]
    UnknownTask {
        /// The name asked for.
        name: String,
        /// The names that are registered.
        known: Vec<String>,
    },

    /// Two `#[task]` functions share a name.
    #[error(
        "task name `{name}` is defined twice, at {first} and at {second}: give one of them another name with #[task(name = \"...\")]"
    )]
    DuplicateTask {
        /// The shared name.
        name: String,
        /// Where the first definition is.
        first: String,
        /// Where the second definition is.
        second: String,
    },

    /// No `#[hook]` with this name is linked into the program.
    #[error("hook `{name}` is not registered in this binary: is the crate that defines it linked (`use my_hooks as _;`)? Registered hooks: {}", list_or_none(.known))]
    UnknownHook {
        /// The name asked for.
        name: String,
        /// The names that are registered.
        known: Vec<String>,
    },

    /// Two `#[hook]` functions share a name.
    #[error(
        "hook name `{name}` is defined twice, at {first} and at {second}: give one of them another name with #[hook(name = \"...\")]"
    )]
    DuplicateHook {
        /// The shared name.
        name: String,
        /// Where the first definition is.
        first: String,
        /// Where the second definition is.
        second: String,
    },

    /// The program links no `#[task]` at all.
    #[error(
        "this program has no registered tasks. If your tasks live in a library crate, name it once in your binary (`use my_tasks as _;` in main.rs) so that it is linked"
    )]
    NoTasks,

    /// A schedule's cron expression or time zone cannot be read.
    #[error("invalid schedule {expr:?}: {reason}")]
    InvalidSchedule {
        /// The expression.
        expr: String,
        /// What is wrong.
        reason: String,
    },

    /// Two `#[schedule]`s share a name.
    #[error(
        "schedule name `{name}` is used twice, at {first} and at {second}: give one of them another name with #[schedule(name = \"...\")]"
    )]
    DuplicateSchedule {
        /// The shared name.
        name: String,
        /// Where the first is.
        first: String,
        /// Where the second is.
        second: String,
    },

    /// No registered schedule has this name.
    #[error("no schedule named `{name}` is registered in this binary. Registered schedules: {}", list_or_none(.known))]
    UnknownSchedule {
        /// The name asked for.
        name: String,
        /// The registered names.
        known: Vec<String>,
    },

    /// A change of a queue's settings is refused: the reason says what to write.
    #[error("queue `{queue}`: {reason}; nothing was changed")]
    InvalidQueueSettings {
        /// The queue's name.
        queue: String,
        /// What is wrong and what to write instead.
        reason: String,
    },

    /// A schedule to store (or stored) is refused: the reason says what to write.
    #[error("schedule `{name}`: {reason}; nothing was stored")]
    InvalidStoredSchedule {
        /// The schedule's name.
        name: String,
        /// What is wrong and what to write instead.
        reason: String,
    },

    /// No worker status row has this label.
    #[error("no worker labelled `{label}` has run on this database: `app status --all` lists the workers. Known: {}", list_or_none(.known))]
    UnknownWorker {
        /// The label asked for.
        label: String,
        /// The labels of the workers not stopped yet.
        known: Vec<String>,
    },

    /// A command-line option or argument has an unusable value.
    #[error("invalid {option}: {reason}")]
    InvalidOption {
        /// The option, e.g. `--due`.
        option: String,
        /// What is wrong and what to write instead.
        reason: String,
    },

    /// The worker could not start a thread or an async runtime it needs (the system refused:
    /// too many threads, no memory).
    #[error("{0}")]
    Runtime(String),

    /// [`TaskHandle::wait`](crate::TaskHandle::wait) saw the execution end without success.
    #[error("task execution {id} of `{task}` ended {state}{}", .error.as_deref().map(|e| format!(": {e}")).unwrap_or_default())]
    TaskFailed {
        /// The last execution of the chain (after retries).
        id: i64,
        /// The task's name.
        task: String,
        /// Its final state.
        state: State,
        /// Its error message, if any.
        error: Option<String>,
    },

    /// [`TaskHandle::wait`](crate::TaskHandle::wait) gave up.
    #[error(
        "task execution {id} is still {state} after waiting {timeout:?}: is a worker running for its queue?"
    )]
    WaitTimeout {
        /// The execution waited on (the latest of its retry chain).
        id: i64,
        /// Its state when the wait ended.
        state: State,
        /// How long it waited.
        timeout: Duration,
    },

    /// A flow to start is refused: the reason says what to write; nothing was stored.
    #[error("flow{}: {reason}; nothing was stored", .name.as_deref().map(|n| format!(" `{n}`")).unwrap_or_default())]
    InvalidFlow {
        /// The flow's name, if it has one.
        name: Option<String>,
        /// What is wrong and what to write instead.
        reason: String,
    },

    /// A flow's row holds something toosimple cannot read.
    #[error("flow {id} is corrupt: {reason}")]
    CorruptFlow {
        /// The flow's id.
        id: i64,
        /// What is wrong with it.
        reason: String,
    },

    /// No flow has this id (or name).
    #[error("no flow {what}: `app flow list` lists the flows of this database")]
    FlowNotFound {
        /// `with id 42`, or `named "signup"`.
        what: String,
    },

    /// [`FlowHandle::wait`](crate::FlowHandle::wait) gave up.
    #[error(
        "flow {id} is still running after waiting {timeout:?} (at step {step}): is a worker running for its queues?"
    )]
    FlowWaitTimeout {
        /// The flow.
        id: i64,
        /// The step it was at (1 is the first).
        step: i32,
        /// How long it waited.
        timeout: Duration,
    },
}

fn list_or_none(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}

impl Error {
    /// The message followed by each underlying cause, `: `-separated, for logs and the CLI.
    /// The `Display` of each variant with a source already ends with that source's message
    /// (a user printing `{e}` sees why), so this adds only deeper causes.
    pub fn report(&self) -> String {
        report(self)
    }

    /// Whether the error is a database or connection failure that may pass (a restart, a
    /// network blip), as opposed to a mistake that retrying cannot fix.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Error::Connect { .. }
                | Error::Pool { .. }
                | Error::Query { .. }
                | Error::DatabaseFull { .. }
        )
    }
}

/// Any error's message followed by each underlying cause, `: `-separated (a cause whose text
/// already ends the message is not repeated): what logs, the CLI and recorded task errors show.
pub fn report(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(cause_text.trim_end());
        }
        source = cause.source();
    }
    text
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Lets a caller's diesel transaction closure return toosimple's [`Error`], so that
/// `conn.transaction(|conn| { ...; my_task::queue_in(conn, ...) })` needs no error type of its own.
///
/// A commit that fails for want of space becomes [`Error::DatabaseFull`]: the caller's
/// transaction, and every task it queued, was rolled back.
impl From<diesel::result::Error> for Error {
    fn from(source: diesel::result::Error) -> Self {
        Error::write_failed(
            "running a transaction".to_string(),
            || "the database".to_string(),
            |_| "the transaction and the tasks it queued were rolled back".to_string(),
            source,
        )
    }
}

/// The database's name for a "no space left" error, if `source` is one.
pub(crate) fn full_code(source: &diesel::result::Error) -> Option<&'static str> {
    let diesel::result::Error::DatabaseError(_, info) = source else {
        return None;
    };
    let message = info.message();
    if message.contains("database or disk is full") {
        Some("SQLITE_FULL")
    } else if message.contains("No space left on device") || message.contains("disk full") {
        // PostgreSQL: "could not extend file …: No space left on device" (SQLSTATE 53100).
        Some("disk full")
    } else {
        None
    }
}

impl Error {
    /// `Error::Query`, or [`Error::DatabaseFull`] at `location` when the database ran out of
    /// space, saying `consequence` (what was not stored).
    pub(crate) fn write_failed(
        action: String,
        location: impl FnOnce() -> String,
        consequence: impl FnOnce(&str) -> String,
        source: diesel::result::Error,
    ) -> Error {
        match full_code(&source) {
            Some(code) => Error::DatabaseFull {
                location: location(),
                code,
                consequence: consequence(&action),
                source,
            },
            None => Error::Query { action, source },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_such_table() -> diesel::result::Error {
        diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::Unknown,
            Box::new("no such table: orders".to_string()),
        )
    }

    /// Finding: `{e}` said "database error while running a transaction" and only `{e:?}` said
    /// which table was missing.
    #[test]
    fn display_carries_the_cause_and_report_does_not_repeat_it() {
        let error = Error::from(no_such_table());
        assert_eq!(
            error.to_string(),
            "database error while running a transaction: no such table: orders"
        );
        assert_eq!(error.report(), error.to_string());
        let encode = Error::EncodeArg {
            task: "t".into(),
            arg: "a".into(),
            source: serde_json::from_str::<i64>("x").unwrap_err(),
        };
        assert!(encode.to_string().contains(": expected value"), "{encode}");
        assert_eq!(encode.report(), encode.to_string());
    }
}
