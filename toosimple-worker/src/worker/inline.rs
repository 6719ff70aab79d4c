//! Running executions in the caller's own thread: a test's inline mode
//! ([`testing::inline`](crate::testing::inline)).
//!
//! The execution is claimed (`Processing` under the label [`INLINE_LABEL`]), run here, and its
//! outcome recorded by the store's completion, retries and replacements included, then its
//! hook is called: the rows end as a worker would leave them. A sync task runs in this thread;
//! an async one on a runtime of its own in this thread, or, when this thread already drives a
//! runtime (an async test), on a scoped thread that is waited for.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

use toosimple_core::runtime::{Invoker, RunResult};
use toosimple_core::store::{ClaimedExec, Completion, Outcome};
use toosimple_core::{Error, Store, TaskDef};
use tracing::Instrument;

use super::execute::{outcome_of, panicked};
use super::hooks::call_hooks;
use super::trace::{record_outcome, task_span};
use crate::clock::{Clock, DatabaseClock};

/// The worker label of executions run inline.
pub(crate) const INLINE_LABEL: &str = "inline";

/// Claims, runs here and records executions `ids` of `store`, then calls their hooks.
pub(crate) fn run_here(store: &Store, ids: &[i64]) -> Result<(), Error> {
    // The machine's clock: an inline run has no heartbeat to measure the database's by.
    let clock = DatabaseClock::new();
    for exec in store.claim_ids(INLINE_LABEL, ids, clock.now())? {
        let id = exec.id;
        let def = toosimple_core::find_task(&exec.task_name)?;
        let outcome = match store.signing().map(|s| s.check(&exec)) {
            Some(Err(message)) => Outcome::Invalid(message),
            _ => {
                let span = task_span(def, &exec);
                let outcome = span.in_scope(|| run(def, &exec));
                record_outcome(&span, &outcome);
                outcome
            }
        };
        let completion = Completion {
            exec,
            outcome,
            finished: clock.now(),
        };
        store.complete(INLINE_LABEL, std::slice::from_ref(&completion))?;
        call_hooks(store, INLINE_LABEL, None, &clock, id);
    }
    Ok(())
}

/// Runs `exec` in this thread; an async task gets its time limit, a sync one cannot be
/// stopped and runs to its end.
fn run(def: &'static TaskDef, exec: &ClaimedExec) -> Outcome {
    let args: serde_json::Value = match serde_json::from_str(&exec.args) {
        Ok(args) => args,
        Err(e) => return Outcome::Invalid(format!("arguments are not valid JSON: {e}")),
    };
    let returned = match def.invoker() {
        Invoker::Sync(call) => catch_unwind(AssertUnwindSafe(|| call(args))),
        Invoker::Async(call) => {
            let timeout = exec
                .timeout_ms
                .map(|ms| Duration::from_millis(u64::try_from(ms).unwrap_or(1)))
                .or(def.timeout().map(Duration::from_secs));
            // Current on the scoped thread too, when there is one.
            let future = call(args).in_current_span();
            match block_on_here(async move {
                match timeout {
                    Some(limit) => tokio::time::timeout(limit, future).await.ok(),
                    None => Some(future.await),
                }
            }) {
                Ok(Some(result)) => Ok(result),
                Ok(None) => {
                    return Outcome::Failed(format!(
                        "timed out after {} s",
                        timeout.map_or(0.0, |t| t.as_secs_f64())
                    ));
                }
                Err(payload) => Err(payload),
            }
        }
    };
    match returned {
        Ok(result) => outcome_of(result),
        Err(payload) => panicked(&*payload),
    }
}

/// Drives `future` to its end from this thread, its panic caught.
fn block_on_here<F>(future: F) -> std::thread::Result<F::Output>
where
    F: Future<Output = Option<RunResult>> + Send,
{
    let drive = move || -> std::thread::Result<F::Output> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Box::new(format!("cannot start a runtime: {e}")) as _)?;
        catch_unwind(AssertUnwindSafe(|| runtime.block_on(future)))
    };
    if tokio::runtime::Handle::try_current().is_err() {
        return drive();
    }
    // A runtime cannot be started inside another: a scoped thread, in inline mode too (the
    // task's own enqueues run inline as they would here).
    let runner = toosimple_core::testing::set_inline_runner(None);
    toosimple_core::testing::set_inline_runner(runner);
    std::thread::scope(|scope| {
        scope
            .spawn(move || {
                toosimple_core::testing::set_inline_runner(runner);
                drive()
            })
            .join()
            .unwrap_or_else(Err)
    })
}
