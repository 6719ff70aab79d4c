//! The link-time registry of `#[task]` definitions.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;

use serde_json::Value;

use crate::error::{Error, Result};
use crate::hook::Hook;
use crate::ttl::Ttl;

/// A boxed future returned by async tasks' runners.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// What running a task produced: its result as JSON, or why it did not succeed.
pub type RunResult = std::result::Result<Value, RunError>;

/// Why a task run did not produce a result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RunError {
    /// The stored arguments do not fit the function; the execution becomes `Invalid`.
    #[error("{0}")]
    InvalidArgs(String),
    /// The function returned an `Err`; the execution becomes `Failed`.
    #[error("{0}")]
    Failed(String),
}

/// How the worker calls a task: its JSON arguments in, its JSON result out.
#[derive(Clone, Copy)]
pub enum Invoker {
    /// A plain `fn`, run on a blocking thread.
    Sync(fn(Value) -> RunResult),
    /// An `async fn`, run on the async runtime.
    Async(fn(Value) -> BoxFuture<RunResult>),
}

impl fmt::Debug for Invoker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Invoker::Sync(_) => "Invoker::Sync",
            Invoker::Async(_) => "Invoker::Async",
        })
    }
}

/// The definition of one task, as written in its `#[task(...)]` attribute.
///
/// Built by the macro (through the `const fn` `with_*` setters) and collected at link time; read it with
/// [`tasks`] or [`find_task`].
#[derive(Debug, Clone, Copy)]
pub struct TaskDef {
    name: &'static str,
    queue: &'static str,
    priority: i32,
    retries: i32,
    /// Whether `#[task(retries = …)]` chose them: else its queue's default retries apply.
    own_retries: bool,
    retry_delay: i64,
    unique: bool,
    timeout: Option<u64>,
    run: Invoker,
    check: Option<fn(Value) -> std::result::Result<(), RunError>>,
    hook: Option<Hook>,
    ttl: Option<i64>,
    location: &'static str,
}

impl TaskDef {
    /// A definition with the defaults: queue `"default"`, priority 0, no retries, not unique,
    /// no timeout. `location` is `file:line` of the function, for error messages.
    pub const fn new(name: &'static str, run: Invoker, location: &'static str) -> Self {
        TaskDef {
            name,
            queue: "default",
            priority: 0,
            retries: 0,
            own_retries: false,
            retry_delay: 0,
            unique: false,
            timeout: None,
            run,
            check: None,
            hook: None,
            ttl: None,
            location,
        }
    }

    /// Sets the argument check [`check_args`](Self::check_args) runs: the runner's decoding
    /// of each argument into its type, without the call.
    pub const fn with_check(
        mut self,
        check: fn(Value) -> std::result::Result<(), RunError>,
    ) -> Self {
        self.check = Some(check);
        self
    }

    /// Sets the queue; workers choose the queues they serve.
    pub const fn with_queue(mut self, queue: &'static str) -> Self {
        self.queue = queue;
        self
    }

    /// Sets the priority; a higher number runs first.
    pub const fn with_priority(mut self, priority: i32) -> Self {
        self.priority = priority;
        self
    }

    /// Sets how many times a failure is retried (-1: forever).
    pub const fn with_retries(mut self, retries: i32) -> Self {
        self.retries = retries;
        self.own_retries = true;
        self
    }

    /// Sets the delay in seconds before the first retry; it doubles after each failure.
    pub const fn with_retry_delay(mut self, seconds: i64) -> Self {
        self.retry_delay = seconds;
        self
    }

    /// Makes the task unique: at most one pending execution per distinct arguments.
    pub const fn with_unique(mut self, unique: bool) -> Self {
        self.unique = unique;
        self
    }

    /// Sets the run time after which an execution fails as timed out.
    pub const fn with_timeout(mut self, seconds: u64) -> Self {
        self.timeout = Some(seconds);
        self
    }

    /// Calls `hook` with each finished execution of the task (unless a call or a schedule
    /// names its own).
    pub const fn with_hook(mut self, hook: Hook) -> Self {
        self.hook = Some(hook);
        self
    }

    /// The hook its executions get when their call or schedule names none.
    pub const fn hook(&self) -> Option<Hook> {
        self.hook
    }

    /// Keeps each finished execution `seconds` after it finished (0: deleted as soon as
    /// recorded; negative: kept until purged), unless its call sets a TTL of its own.
    pub const fn with_ttl(mut self, seconds: i64) -> Self {
        self.ttl = Some(seconds);
        self
    }

    /// How long its finished executions are kept, when the task says (else the workers'
    /// default).
    pub fn ttl(&self) -> Option<Ttl> {
        self.ttl.map(Ttl::from_seconds)
    }

    /// The task's name, stored in each execution row.
    pub const fn name(&self) -> &'static str {
        self.name
    }

    /// The queue its executions go to.
    pub const fn queue(&self) -> &'static str {
        self.queue
    }

    /// Its priority (higher runs first).
    pub const fn priority(&self) -> i32 {
        self.priority
    }

    /// How many retries a failure gets (-1: forever).
    pub const fn retries(&self) -> i32 {
        self.retries
    }

    /// Whether its retries were set ([`with_retries`](Self::with_retries), `#[task(retries =
    /// …)]`): a task that sets none gets its queue's default retries
    /// ([`QueueSettings::default_retries`](crate::QueueSettings::default_retries)), if any.
    pub const fn has_own_retries(&self) -> bool {
        self.own_retries
    }

    /// The first retry's delay, in seconds.
    pub const fn retry_delay(&self) -> i64 {
        self.retry_delay
    }

    /// Whether the task is unique.
    pub const fn is_unique(&self) -> bool {
        self.unique
    }

    /// Its timeout, in seconds.
    pub const fn timeout(&self) -> Option<u64> {
        self.timeout
    }

    /// How to call it.
    pub const fn invoker(&self) -> Invoker {
        self.run
    }

    /// Whether `args` would decode into the function's argument types, as a worker decodes
    /// them before the call (a missing, extra or mistyped argument is the same error that
    /// would make the execution `Invalid`). Nothing runs. A definition built without
    /// [`with_check`](Self::with_check) accepts any arguments.
    pub fn check_args(&self, args: &Value) -> Result<()> {
        match self.check.map(|check| check(args.clone())) {
            Some(Err(e)) => Err(Error::InvalidArgs {
                task: self.name.to_string(),
                reason: e.to_string(),
            }),
            _ => Ok(()),
        }
    }

    /// Where it is defined (`file:line`).
    pub const fn location(&self) -> &'static str {
        self.location
    }
}

inventory::collect!(TaskDef);

/// Every task linked into this program, sorted by name.
///
/// Fails when two tasks share a name (the error names both places). An empty list is not an
/// error here; [`require_tasks`] is the check for programs that must run tasks.
pub fn tasks() -> Result<&'static [&'static TaskDef]> {
    let registry = registry()?;
    Ok(&registry.sorted)
}

/// The task registered under `name`.
pub fn find_task(name: &str) -> Result<&'static TaskDef> {
    let registry = registry()?;
    registry
        .by_name
        .get(name)
        .copied()
        .ok_or_else(|| Error::UnknownTask {
            name: name.to_string(),
            known: registry.sorted.iter().map(|t| t.name.to_string()).collect(),
        })
}

/// Like [`tasks`], but an empty registry is an error that says how to link a library's tasks.
pub fn require_tasks() -> Result<&'static [&'static TaskDef]> {
    let all = tasks()?;
    if all.is_empty() {
        return Err(Error::NoTasks);
    }
    Ok(all)
}

struct Registry {
    by_name: BTreeMap<&'static str, &'static TaskDef>,
    sorted: Vec<&'static TaskDef>,
}

struct Duplicate {
    name: &'static str,
    first: &'static str,
    second: &'static str,
}

fn registry() -> Result<&'static Registry> {
    static REGISTRY: OnceLock<std::result::Result<Registry, Duplicate>> = OnceLock::new();
    let built = REGISTRY.get_or_init(|| {
        let mut by_name: BTreeMap<&'static str, &'static TaskDef> = BTreeMap::new();
        let mut defs: Vec<&'static TaskDef> = inventory::iter::<TaskDef>.into_iter().collect();
        // Sort so that the error names the same pair whatever the link order.
        defs.sort_by_key(|d| (d.name, d.location));
        for def in defs {
            if let Some(first) = by_name.insert(def.name, def) {
                return Err(Duplicate {
                    name: def.name,
                    first: first.location,
                    second: def.location,
                });
            }
        }
        let sorted = by_name.values().copied().collect();
        Ok(Registry { by_name, sorted })
    });
    built.as_ref().map_err(|d| Error::DuplicateTask {
        name: d.name.to_string(),
        first: d.first.to_string(),
        second: d.second.to_string(),
    })
}
