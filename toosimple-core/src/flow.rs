//! Flows: task calls that run one after another, each enqueued only once the one before it
//! succeeded (django-pq's `Flow` and `FlowStore`).

use std::fmt;
use std::marker::PhantomData;
use std::str::FromStr;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::options::CallOptions;
use crate::registry::TaskDef;
use crate::store::flows::FlowStepRow;
use crate::store::{Store, default_store};
use crate::{TaskExec, TaskHandle};

/// One call of a task, described but not enqueued: what each task's module's `call(...)`
/// (or `with()…call(...)`, with options) returns, for a [`Flow`] to run in its turn. Its
/// arguments are checked against the task's parameters at compile time, as `queue`'s are.
///
/// ```no_run
/// use toosimple_core::{TaskCall, task};
///
/// #[task]
/// pub fn add(a: i64, b: i64) -> i64 {
///     a + b
/// }
///
/// # fn main() {
/// let call: TaskCall<i64> = add::call(2, 3);
/// let later: TaskCall<i64> = add::with().priority(5).call(4, 5);
/// # }
/// ```
#[must_use = "a call enqueues nothing until a flow starts"]
pub struct TaskCall<T = Value> {
    def: &'static TaskDef,
    args: Result<Value>,
    options: CallOptions,
    output: PhantomData<fn() -> T>,
}

impl<T> fmt::Debug for TaskCall<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskCall")
            .field("task", &self.def.name())
            .field("args", &self.args)
            .field("options", &self.options)
            .finish()
    }
}

impl<T> TaskCall<T> {
    /// A call of `def` with `args` and `options`. Not API: each task's `call` makes one.
    #[doc(hidden)]
    pub fn new(def: &'static TaskDef, args: Result<Value>, options: CallOptions) -> Self {
        TaskCall {
            def,
            args,
            options,
            output: PhantomData,
        }
    }

    /// The task's name.
    pub fn task_name(&self) -> &'static str {
        self.def.name()
    }
}

/// A step of a [`Flow`] being built: a call with its type forgotten.
#[derive(Debug)]
struct PlannedStep {
    def: &'static TaskDef,
    args: Result<Value>,
    options: CallOptions,
}

/// Task calls that run one after another: each step is enqueued only once the step before it
/// succeeded, and a step that fails (after its retries) ends the flow, its later steps marked
/// [`Skipped`](StepState::Skipped). A flow is stored whole in one transaction, its first step
/// enqueued in it; it is found again by id or by name ([`Flow::get`], [`Flow::find`], `app
/// flow show ID|NAME`, the admin's Flows page).
///
/// Each step's arguments are fixed when the flow starts: a step does not receive the result
/// of the step before it (see the README's "Flows").
///
/// ```no_run
/// use std::time::Duration;
/// use toosimple_core::{Flow, FlowState, task};
///
/// #[task(retries = 2)]
/// pub fn create_account(email: String) {}
///
/// #[task]
/// pub fn send_welcome(email: String) {}
///
/// # fn main() -> Result<(), toosimple_core::Error> {
/// let email = "ann@example.com".to_string();
/// let flow = Flow::new()
///     .named("signup")
///     .then(create_account::call(email.clone()))
///     .then(send_welcome::with().after(Duration::from_secs(60)).call(email))
///     .start()?;
/// let done = flow.wait(Duration::from_secs(120))?;
/// assert_eq!(done.state, FlowState::Succeeded);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Default)]
#[must_use = "a flow stores nothing until `start`"]
pub struct Flow {
    name: Option<String>,
    steps: Vec<PlannedStep>,
}

impl Flow {
    /// A flow without steps yet.
    pub fn new() -> Flow {
        Flow::default()
    }

    /// Names the flow, to find it by that name later; names need not be unique.
    pub fn named(mut self, name: impl Into<String>) -> Flow {
        self.name = Some(name.into());
        self
    }

    /// Adds `call` as the next step. Its options apply to its execution; a due time
    /// (`with().at(…)`) holds even if the step before ends earlier, and a delay
    /// (`with().after(…)`) counts from when the step is enqueued.
    pub fn then<T>(mut self, call: TaskCall<T>) -> Flow {
        self.steps.push(PlannedStep {
            def: call.def,
            args: call.args,
            options: call.options,
        });
        self
    }

    /// Stores the flow in the default store and enqueues its first step, in one transaction.
    ///
    /// # Errors
    /// Fails, storing nothing, when the flow has no step, when an argument cannot be encoded
    /// or a step's options cannot be honoured, or when the database cannot store it.
    pub fn start(self) -> Result<FlowHandle> {
        self.start_in(&default_store()?)
    }

    /// [`start`](Self::start) on `store`.
    pub fn start_in(self, store: &Store) -> Result<FlowHandle> {
        // Fails when two tasks share a name, before anything is written.
        crate::registry::tasks()?;
        let name = self.name;
        let refuse = |reason: String| Error::InvalidFlow {
            name: name.clone(),
            reason,
        };
        if self.steps.is_empty() {
            return Err(refuse(
                "it has no step: add one with `.then(my_task::call(...))`".to_string(),
            ));
        }
        if i32::try_from(self.steps.len()).is_err() {
            return Err(refuse(format!("{} steps is too many", self.steps.len())));
        }
        let mut rows = Vec::with_capacity(self.steps.len());
        let mut parts = Vec::with_capacity(self.steps.len());
        for step in self.steps {
            let args = step.args?;
            rows.push(crate::enqueue::new_row_with(
                step.def,
                &args,
                &step.options,
            )?);
            parts.push(step.options.due_parts());
        }
        for row in &mut rows {
            // The flow follows its own executions: a unique task's step is not folded into
            // another pending execution of it.
            row.unique_key = None;
        }
        store.seal(&mut rows);
        let steps = rows
            .iter()
            .zip(&parts)
            .enumerate()
            .map(|(i, (row, (at, delay)))| {
                FlowStepRow::new(
                    i32::try_from(i + 1).unwrap_or(i32::MAX),
                    row,
                    at.map(|t| t.naive_utc()),
                    *delay,
                )
            })
            .collect();
        let first = rows.swap_remove(0);
        let (id, first_exec) = store.start_flow(name.as_deref(), steps, first)?;
        tracing::debug!(flow = id, name = ?name, exec = first_exec, "flow started");
        Ok(FlowHandle {
            store: store.clone(),
            id,
        })
    }

    /// Flow `id` of the default store, with its steps.
    ///
    /// # Errors
    /// [`Error::FlowNotFound`] when no flow has this id (or it has expired).
    pub fn get(id: i64) -> Result<FlowExec> {
        Flow::get_in(&default_store()?, id)
    }

    /// [`get`](Self::get) on `store`.
    pub fn get_in(store: &Store, id: i64) -> Result<FlowExec> {
        store.flow(id)
    }

    /// The flows named `name` in the default store, newest first (names need not be unique);
    /// empty when none has it.
    pub fn find(name: &str) -> Result<Vec<FlowExec>> {
        Flow::find_in(&default_store()?, name)
    }

    /// [`find`](Self::find) on `store`.
    pub fn find_in(store: &Store, name: &str) -> Result<Vec<FlowExec>> {
        store.flows(Some(name), i64::MAX)
    }

    /// Every execution of flow `id` in `store` so far (retries included), oldest first.
    pub fn executions_in(store: &Store, id: i64) -> Result<Vec<TaskExec>> {
        store.flow_executions(id)
    }

    /// The newest `limit` flows of `store`, newest first.
    pub fn list_in(store: &Store, limit: i64) -> Result<Vec<FlowExec>> {
        store.flows(None, limit)
    }

    /// The flow `id_or_name` names in `store`: the flow with that id when it is a number and
    /// one has it, else the newest flow with that name (the CLI's `flow show`).
    ///
    /// # Errors
    /// [`Error::FlowNotFound`] when neither finds one.
    pub fn lookup_in(store: &Store, id_or_name: &str) -> Result<FlowExec> {
        if let Ok(id) = id_or_name.trim().parse::<i64>() {
            match store.flow(id) {
                Err(Error::FlowNotFound { .. }) => {}
                found => return found,
            }
        }
        store
            .flows(Some(id_or_name), 1)?
            .into_iter()
            .next()
            .ok_or_else(|| Error::FlowNotFound {
                what: if id_or_name.trim().parse::<i64>().is_ok() {
                    format!("with id {id_or_name} or named {id_or_name:?}")
                } else {
                    format!("named {id_or_name:?}")
                },
            })
    }
}

/// A started [`Flow`]: its id, and reading it back.
#[derive(Debug, Clone)]
pub struct FlowHandle {
    store: Store,
    id: i64,
}

impl FlowHandle {
    /// The flow's id.
    pub fn id(&self) -> i64 {
        self.id
    }

    /// The flow as stored now, with its steps.
    pub fn get(&self) -> Result<FlowExec> {
        self.store.flow(self.id)
    }

    /// Every execution of the flow so far (retries included), oldest first.
    pub fn executions(&self) -> Result<Vec<TaskExec>> {
        self.store.flow_executions(self.id)
    }

    /// A handle on the execution of step `position` (1 is the first), once it is enqueued:
    /// its latest execution (after retries).
    pub fn step(&self, position: i32) -> Result<Option<TaskHandle<Value>>> {
        let flow = self.get()?;
        Ok(flow
            .steps
            .iter()
            .find(|s| s.position == position)
            .and_then(|s| s.exec)
            .map(|id| TaskHandle::enqueued(Some(self.store.clone()), id, false)))
    }

    /// Blocks until the flow has ended (succeeded or failed), and returns it.
    ///
    /// # Errors
    /// [`Error::FlowWaitTimeout`] when it still runs after `timeout`.
    pub fn wait(&self, timeout: Duration) -> Result<FlowExec> {
        let deadline = Instant::now() + timeout;
        let mut pause = Duration::from_millis(2);
        loop {
            let flow = self.get()?;
            if flow.state != FlowState::Running {
                return Ok(flow);
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(Error::FlowWaitTimeout {
                    id: self.id,
                    step: flow.current_step().map_or(0, |s| s.position),
                    timeout,
                });
            }
            std::thread::sleep(pause.min(deadline - now));
            pause = (pause * 2).min(Duration::from_millis(100));
        }
    }
}

/// A stored flow (django-pq's `FlowStore`): its steps and where it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowExec {
    /// The flow's id.
    pub id: i64,
    /// Its name, if it was given one.
    pub name: Option<String>,
    /// Where it is.
    pub state: FlowState,
    /// When it started.
    pub created: DateTime<Utc>,
    /// When it last changed (a step enqueued, its end).
    pub updated: DateTime<Utc>,
    /// When it ended.
    pub finished: Option<DateTime<Utc>>,
    /// The execution that ended it: its last step's, or the failed one's. The flow and all
    /// its executions are deleted when this one's TTL has run out.
    pub final_exec: Option<i64>,
    /// Why it failed: which step, and its error.
    pub error: Option<String>,
    /// Its steps, first first.
    pub steps: Vec<FlowStep>,
}

impl FlowExec {
    /// The step running now (enqueued, not ended), if the flow runs.
    pub fn current_step(&self) -> Option<&FlowStep> {
        self.steps.iter().find(|s| s.state == StepState::Enqueued)
    }
}

/// One step of a [`FlowExec`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowStep {
    /// Its place in the flow, 1 for the first.
    pub position: i32,
    /// The task it calls.
    pub task_name: String,
    /// The call's arguments.
    pub args: Value,
    /// The queue its execution goes to.
    pub queue: String,
    /// Its execution's priority.
    pub priority: i32,
    /// The time it was set to run at (`with().at(…)`), if any.
    pub due: Option<DateTime<Utc>>,
    /// The delay after it is enqueued it was set to wait (`with().after(…)`), if any.
    pub delay: Option<Duration>,
    /// Where it is.
    pub state: StepState,
    /// Its latest execution (a retry's, after a failure), once enqueued.
    pub exec: Option<i64>,
}

macro_rules! named_states {
    ($(#[$meta:meta])* $ty:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $ty {
            $($(#[$vmeta])* $variant),+
        }

        impl $ty {
            /// Every state.
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];

            /// The name stored in the database and shown by the CLI.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $text),+
                }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $ty {
            type Err = String;

            fn from_str(s: &str) -> std::result::Result<Self, String> {
                match s {
                    $($text => Ok($ty::$variant),)+
                    other => Err(format!(
                        "unknown {} {other:?}: expected one of {}",
                        stringify!($ty),
                        [$($text),+].join(", ")
                    )),
                }
            }
        }
    };
}

named_states! {
    /// Where a flow is.
    FlowState {
        /// A step is enqueued or running.
        Running = "running",
        /// Every step succeeded.
        Succeeded = "succeeded",
        /// A step failed (after its retries), was invalid or was cancelled; the steps after it
        /// are skipped.
        Failed = "failed",
    }
}

named_states! {
    /// Where one step of a flow is.
    StepState {
        /// Not enqueued yet: the steps before it have not all succeeded.
        Waiting = "waiting",
        /// Its execution is enqueued, running or being retried.
        Enqueued = "enqueued",
        /// Its execution succeeded.
        Succeeded = "succeeded",
        /// Its execution failed (after its retries), was invalid or was cancelled.
        Failed = "failed",
        /// Never enqueued: a step before it failed.
        Skipped = "skipped",
    }
}
