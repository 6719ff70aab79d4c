//! Running one claimed execution: decoding its arguments, calling the task on the right
//! executor, and turning panics and time-outs into outcomes.

use std::time::{Duration, Instant};

use toosimple_core::store::{ClaimedExec, Completion, Outcome};
use toosimple_core::{Invoker, RunError, TaskDef};

/// Aborts a spawned async task when dropped, so that a worker that terminates (or gives up on
/// a timed-out task) does not leave it running detached.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs `exec` with `def` and reports how it ended.
///
/// Async tasks run on the runtime and are cancelled at their timeout. Sync tasks run on the
/// blocking pool; a thread cannot be pre-empted, so at the timeout the execution is recorded as
/// failed and the thread is abandoned: whatever it returns later is dropped and never written
/// over the recorded time-out.
pub(crate) async fn execute(def: &'static TaskDef, exec: ClaimedExec) -> Completion {
    let start = Instant::now();
    tracing::info!(task = def.name(), id = exec.id, "task started");
    let outcome = run(def, &exec.args).await;
    let elapsed = start.elapsed();
    match &outcome {
        Outcome::Succeeded(_) => {
            tracing::info!(task = def.name(), id = exec.id, duration = ?elapsed, outcome = "succeeded", "task ended")
        }
        Outcome::Failed(message) | Outcome::Invalid(message) | Outcome::Interrupted(message) => {
            tracing::info!(
                task = def.name(),
                id = exec.id,
                duration = ?elapsed,
                outcome = outcome_name(&outcome),
                error = %message,
                "task ended"
            )
        }
    }
    Completion {
        exec,
        outcome,
        finished: chrono::Utc::now(),
    }
}

fn outcome_name(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Succeeded(_) => "succeeded",
        Outcome::Failed(_) => "failed",
        Outcome::Invalid(_) => "invalid",
        Outcome::Interrupted(_) => "interrupted",
    }
}

async fn run(def: &'static TaskDef, args: &str) -> Outcome {
    let args: serde_json::Value = match serde_json::from_str(args) {
        Ok(args) => args,
        Err(e) => return Outcome::Invalid(format!("arguments are not valid JSON: {e}")),
    };
    let timeout = def.timeout().map(Duration::from_secs);
    let joined = match def.invoker() {
        Invoker::Async(call) => {
            let handle = tokio::spawn(call(args));
            let _abort = AbortOnDrop(handle.abort_handle());
            within(timeout, handle).await
        }
        Invoker::Sync(call) => {
            within(timeout, tokio::task::spawn_blocking(move || call(args))).await
        }
    };
    match joined {
        None => Outcome::Failed(format!(
            "timed out after {} s",
            timeout.map_or(0, |t| t.as_secs())
        )),
        Some(Err(join_error)) => match join_error.try_into_panic() {
            Ok(payload) => Outcome::Failed(format!("panicked: {}", panic_message(&*payload))),
            Err(_) => Outcome::Interrupted("the task was cancelled".to_string()),
        },
        Some(Ok(Ok(value))) => Outcome::Succeeded(value),
        Some(Ok(Err(RunError::Failed(message)))) => Outcome::Failed(message),
        Some(Ok(Err(RunError::InvalidArgs(message)))) => Outcome::Invalid(message),
    }
}

async fn within<F: std::future::Future>(timeout: Option<Duration>, future: F) -> Option<F::Output> {
    match timeout {
        Some(limit) => tokio::time::timeout(limit, future).await.ok(),
        None => Some(future.await),
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(a panic payload that is not a string)".to_string()
    }
}
