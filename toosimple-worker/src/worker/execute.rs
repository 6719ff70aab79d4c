//! Running one claimed execution: decoding its arguments, calling the task on the right
//! executor, and turning panics and time-outs into outcomes.
//!
//! Task code never runs on the threads of the worker's loop, heartbeat or stop path: async
//! tasks run on the worker's task runtime, sync tasks on blocking-pool threads of their own;
//! the wrapper here (and its time-out) runs on the loop's runtime and only waits for the task. An async task that blocks its thread then delays other tasks, not the worker,
//! and is named in a warning.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::runtime::Handle;
use toosimple_core::TaskDef;
use toosimple_core::runtime::{BoxFuture, ExecControl, Invoker, RunError, RunResult};
use toosimple_core::store::{ClaimedExec, Completion, Outcome};
use tracing::{Instrument, Span};

use super::trace::{record_outcome, task_span};
use crate::clock::Clock;

/// An async task's single poll longer than this blocked its executor thread: worth a warning.
/// Well-behaved polls take microseconds; this leaves room for a loaded machine.
pub(crate) const BLOCKING_POLL_WARNING: Duration = Duration::from_millis(250);

/// Aborts a spawned async task when dropped, so that a worker that terminates (or gives up on
/// a timed-out task) does not leave it running detached.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs `exec` with `def` and reports how it ended, dated by `clock`.
///
/// Async tasks run on the task runtime `tasks` and are cancelled at their timeout. Sync tasks
/// run on the blocking pool; a thread cannot be pre-empted, so at the timeout the execution is
/// recorded as failed and the thread is abandoned: whatever it returns later is dropped and
/// never written over the recorded time-out.
///
/// `control` is the execution's [`TaskContext`](toosimple_core::TaskContext): current while
/// the task runs, and its cancel flag (set by the heartbeat) aborts an async task at once; a
/// sync task sees the flag and is recorded `Cancelled` when it returns.
///
/// `default_timeout` is its queue's default time limit, for an execution that has none of
/// its own.
pub(crate) async fn execute(
    def: &'static TaskDef,
    exec: ClaimedExec,
    clock: Arc<dyn Clock>,
    tasks: Handle,
    control: Arc<ExecControl>,
    default_timeout: Option<Duration>,
) -> Completion {
    let span = task_span(def, &exec);
    let outcome = async {
        let start = report_start(def, &exec);
        let outcome = cancelled_or(
            &control,
            run(def, &exec, &tasks, &control, &span, default_timeout).await,
        );
        report_end(def, &exec, &outcome, start);
        outcome
    }
    .instrument(span.clone())
    .await;
    record_outcome(&span, &outcome);
    Completion {
        exec,
        outcome,
        finished: clock.now(),
    }
}

/// Logs that `exec` of `def` starts; returns when, for [`report_end`].
pub(crate) fn report_start(def: &TaskDef, exec: &ClaimedExec) -> Instant {
    tracing::info!(task = def.name(), id = exec.id, "task started");
    Instant::now()
}

/// Logs how `exec` of `def`, started at `start`, ended.
pub(crate) fn report_end(def: &TaskDef, exec: &ClaimedExec, outcome: &Outcome, start: Instant) {
    let elapsed = start.elapsed();
    match outcome {
        Outcome::Succeeded(_) => {
            tracing::info!(task = def.name(), id = exec.id, duration = ?elapsed, outcome = "succeeded", "task ended")
        }
        Outcome::Failed(message)
        | Outcome::Invalid(message)
        | Outcome::Interrupted(message)
        | Outcome::Cancelled(message) => {
            tracing::info!(
                task = def.name(),
                id = exec.id,
                duration = ?elapsed,
                outcome = outcome_name(outcome),
                error = %message,
                "task ended"
            )
        }
    }
}

pub(crate) fn outcome_name(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Succeeded(_) => "succeeded",
        Outcome::Failed(_) => "failed",
        Outcome::Invalid(_) => "invalid",
        Outcome::Interrupted(_) => "interrupted",
        Outcome::Cancelled(_) => "cancelled",
    }
}

/// What a run whose cancel flag was set before it ended is recorded as.
pub(crate) const CANCELLED: &str = "cancelled while running (a cancel was requested)";

/// `outcome`, or `Cancelled` when a cancel was asked before the run ended: once the flag is
/// set, whatever the task returns is dropped.
pub(crate) fn cancelled_or(control: &ExecControl, outcome: Outcome) -> Outcome {
    if control.is_cancelled() {
        Outcome::Cancelled(CANCELLED.to_string())
    } else {
        outcome
    }
}

async fn run(
    def: &'static TaskDef,
    exec: &ClaimedExec,
    tasks: &Handle,
    control: &Arc<ExecControl>,
    span: &Span,
    default_timeout: Option<Duration>,
) -> Outcome {
    let args: serde_json::Value = match serde_json::from_str(&exec.args) {
        Ok(args) => args,
        Err(e) => return Outcome::Invalid(format!("arguments are not valid JSON: {e}")),
    };
    // The call's own limit (`CallOptions::timeout`) over the task's.
    let timeout = exec
        .timeout_ms
        .map(|ms| Duration::from_millis(u64::try_from(ms).unwrap_or(1)))
        .or(def.timeout().map(Duration::from_secs))
        .or(default_timeout);
    let joined = match def.invoker() {
        Invoker::Async(call) => {
            let watched = Watched {
                inner: control.enter(|| call(args)),
                task: def.name(),
                id: exec.id,
                warned: false,
                control: control.clone(),
            };
            // The limit runs in the task itself, which polls the task first: when the process
            // resumes from a pause with both the task's timers and the limit's expired, a task
            // that gets to its end is not declared timed out after its side effects happened.
            // The task's own spans and logs belong to its span, on whichever thread it runs.
            let handle = tasks.spawn(within(timeout, watched).instrument(span.clone()));
            let _abort = AbortOnDrop(handle.abort_handle());
            // A cancel request aborts the task at its next await point (`_abort`, dropped).
            tokio::select! {
                biased;
                joined = handle => match joined {
                    Ok(Some(output)) => Some(Ok(output)),
                    Ok(None) => None,
                    Err(join_error) => Some(Err(join_error)),
                },
                () = control.cancelled() => {
                    return Outcome::Cancelled(CANCELLED.to_string());
                }
            }
        }
        Invoker::Sync(call) => {
            // A blocking-pool thread of its own: it shares no thread with the loop (each
            // blocking call gets its own), so it needs no runtime apart, and an abandoned one
            // is left to the caller's runtime shutdown as before.
            let control = control.clone();
            let span = span.clone();
            within(
                timeout,
                tokio::task::spawn_blocking(move || span.in_scope(|| control.enter(|| call(args)))),
            )
            .await
        }
    };
    match joined {
        None => Outcome::Failed(format!(
            "timed out after {} s",
            timeout.map_or(0.0, |t| t.as_secs_f64())
        )),
        Some(Err(join_error)) => match join_error.try_into_panic() {
            Ok(payload) => panicked(&*payload),
            Err(_) => Outcome::Interrupted("the task was cancelled".to_string()),
        },
        Some(Ok(result)) => outcome_of(result),
    }
}

/// The outcome of a run that returned.
pub(crate) fn outcome_of(result: RunResult) -> Outcome {
    match result {
        Ok(value) => Outcome::Succeeded(value),
        Err(RunError::Failed(message)) => Outcome::Failed(message),
        Err(RunError::InvalidArgs(message)) => Outcome::Invalid(message),
    }
}

/// The outcome of a run that panicked with `payload`.
pub(crate) fn panicked(payload: &(dyn std::any::Any + Send)) -> Outcome {
    Outcome::Failed(format!("panicked: {}", panic_message(payload)))
}

async fn within<F: std::future::Future>(timeout: Option<Duration>, future: F) -> Option<F::Output> {
    match timeout {
        Some(limit) => tokio::time::timeout(limit, future).await.ok(),
        None => Some(future.await),
    }
}

pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(a panic payload that is not a string)".to_string()
    }
}

/// An async task's future, timing each poll: a poll that takes long is a task that blocked its
/// thread (a `std::thread::sleep`, blocking I/O, heavy computing) instead of awaiting.
struct Watched {
    inner: BoxFuture<RunResult>,
    task: &'static str,
    id: i64,
    warned: bool,
    /// Current on the thread during each poll: the task's `TaskContext`.
    control: Arc<ExecControl>,
}

impl Future for Watched {
    type Output = RunResult;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<RunResult> {
        let start = Instant::now();
        let control = self.control.clone();
        let poll = control.enter(|| self.inner.as_mut().poll(cx));
        let held = start.elapsed();
        if held >= BLOCKING_POLL_WARNING && !self.warned {
            // Once per execution: the first block names the culprit; more would be noise.
            self.warned = true;
            tracing::warn!(
                task = self.task,
                id = self.id,
                blocked = ?held,
                "async task `{}` (execution {}) blocked its executor thread for {:.1} s without \
                 awaiting, delaying the other async tasks: make it a sync task (a plain `fn`, \
                 run on a blocking thread) or move the blocking call into \
                 tokio::task::spawn_blocking",
                self.task,
                self.id,
                held.as_secs_f64()
            );
        }
        poll
    }
}
