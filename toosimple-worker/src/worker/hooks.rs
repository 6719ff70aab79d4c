//! Calling hooks once outcomes are recorded: the hook each finished execution names (its
//! call's, its schedule's or its task's), and the worker's error hook for every failure; then
//! deleting the executions whose TTL is 0 (django-pq's `result_ttl=0`), once their hooks ran.
//!
//! The worker hands over the ids of executions whose outcome a round has just committed; a
//! task of its own reads each row back and calls its hooks, one after another, on a blocking
//! thread. Nothing a hook does reaches the worker: an `Err` or a panic is logged and kept in
//! the row's `hook_error`, the execution's state stays as recorded, and tasks keep running
//! meanwhile. A hook whose worker died before calling it is called by another worker's
//! [`hooks`](super::maintenance::hooks) pass; one that ran just before its worker died may
//! then run a second time.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use toosimple_core::{Hook, State, Store, TaskExec, find_hook};

/// What to do with one execution once the round that recorded it has committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AfterRecord {
    /// The execution.
    pub(crate) id: i64,
    /// Whether it has hooks to call (its own, or the error hook for a failure).
    pub(crate) hooks: bool,
    /// Whether to delete it then (a TTL of 0).
    pub(crate) delete: bool,
}

impl AfterRecord {
    /// An execution whose hooks are to be called, and that is kept.
    pub(crate) fn hooks(id: i64) -> AfterRecord {
        AfterRecord {
            id,
            hooks: true,
            delete: false,
        }
    }
}

use crate::clock::Clock;

/// The hooks task of one worker.
pub(crate) struct HookRunner {
    sender: mpsc::UnboundedSender<Vec<AfterRecord>>,
    task: JoinHandle<()>,
}

impl HookRunner {
    /// Starts the task that calls hooks for the executions [`send`](Self::send) hands it.
    pub(crate) fn start(
        store: Store,
        label: String,
        error_hook: Option<Hook>,
        clock: Arc<dyn Clock>,
    ) -> HookRunner {
        let (sender, mut receiver) = mpsc::unbounded_channel::<Vec<AfterRecord>>();
        let task = tokio::spawn(async move {
            while let Some(recorded) = receiver.recv().await {
                let (store, label, clock) = (store.clone(), label.clone(), clock.clone());
                // Hooks are the application's code: a blocking thread, never the loop's.
                let _ = tokio::task::spawn_blocking(move || {
                    let mut delete = Vec::new();
                    for after in recorded {
                        if after.hooks {
                            call_hooks(&store, &label, error_hook, clock.as_ref(), after.id);
                        }
                        if after.delete {
                            delete.push(after.id);
                        }
                    }
                    // Left to the retention pass if this fails: their TTL has run out.
                    if let Err(e) = TaskExec::delete_recorded_in(&store, &delete) {
                        tracing::debug!(worker = %label, "could not delete executions with a TTL of 0 yet: {}", e.report());
                    }
                })
                .await;
            }
        });
        HookRunner { sender, task }
    }

    /// Handles executions whose outcomes are recorded.
    pub(crate) fn send(&self, recorded: Vec<AfterRecord>) {
        if !recorded.is_empty() {
            // Fails only once the task ended, which happens when the worker stops.
            let _ = self.sender.send(recorded);
        }
    }

    /// Waits until every hook handed over has been called (a worker that stops).
    pub(crate) async fn finish(self) {
        drop(self.sender);
        let _ = self.task.await;
    }
}

/// Whether `state` is a failure the worker's error hook hears of.
pub(crate) fn is_failure(state: State) -> bool {
    matches!(state, State::Failed | State::Invalid | State::Interrupted)
}

/// Reads execution `id` and calls its hook and, for a failure, the error hook; records when
/// they ran and how they failed.
pub(crate) fn call_hooks(
    store: &Store,
    label: &str,
    error_hook: Option<Hook>,
    clock: &dyn Clock,
    id: i64,
) {
    let exec = match TaskExec::get_in(store, id) {
        Ok(exec) => exec,
        Err(e) => {
            // Deleted meanwhile (a TTL of 0, a purge): nothing left to hand over.
            tracing::debug!(worker = %label, id, "no hook called: {}", e.report());
            return;
        }
    };
    let mut failures = Vec::new();
    let mut called = false;
    if let Some(name) = &exec.hook {
        called = true;
        match find_hook(name) {
            Ok(hook) => {
                if let Err(e) = call(hook, &exec) {
                    failures.push(format!("hook `{name}` {e}"));
                }
            }
            Err(e) => failures.push(e.to_string()),
        }
    }
    if let Some(hook) = error_hook
        && is_failure(exec.state)
    {
        called = true;
        if let Err(e) = call(&hook, &exec) {
            failures.push(format!("error hook `{}` {e}", hook.name()));
        }
    }
    if !called {
        return;
    }
    let error = (!failures.is_empty()).then(|| failures.join("; "));
    if let Some(error) = &error {
        tracing::warn!(worker = %label, task = %exec.task_name, id, "{error} (the execution stays {})", exec.state);
    }
    if let Err(e) = store.record_hook(id, clock.now(), error.as_deref()) {
        tracing::warn!(worker = %label, id, "could not record that the hook ran: {}", e.report());
    }
}

/// Calls `hook`, a panic caught and said as text.
fn call(hook: &Hook, exec: &TaskExec) -> Result<(), String> {
    match catch_unwind(AssertUnwindSafe(|| hook.call(exec))) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("failed: {e}")),
        Err(payload) => Err(format!(
            "panicked: {}",
            super::execute::panic_message(&*payload)
        )),
    }
}
