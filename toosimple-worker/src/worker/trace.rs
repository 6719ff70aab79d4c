//! The span each execution runs in (the `otel` feature): `toosimple.task`, whose OpenTelemetry
//! parent is the span that enqueued the row, so that a trace goes from the request that queued
//! a task to the task's own work, in whichever process runs it.
//!
//! Without the feature the span is `Span::none()`: no span is made, and the worker's log lines
//! are as before.

use toosimple_core::TaskDef;
use toosimple_core::store::{ClaimedExec, Outcome};
use tracing::Span;

use super::execute::outcome_name;

/// The span `exec` of `def` runs in. A root in tracing's tree (not a child of whatever the
/// worker's loop was in); its OpenTelemetry parent is the row's stored trace context. A stored
/// context that cannot be read is logged and the span starts a new trace: bad input never
/// stops the task.
#[cfg(feature = "otel")]
pub(crate) fn task_span(def: &TaskDef, exec: &ClaimedExec) -> Span {
    use toosimple_core::otel::tracing_opentelemetry::OpenTelemetrySpanExt;

    let span = tracing::info_span!(
        parent: None,
        "toosimple.task",
        otel.kind = "consumer",
        task = def.name(),
        id = exec.id,
        queue = %exec.queue,
        retries = exec.retries,
        outcome = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
        otel.status_description = tracing::field::Empty,
    );
    if let Some(stored) = exec.trace_context.as_deref() {
        match toosimple_core::otel::parse_trace_context(stored) {
            // Fails only without the OpenTelemetry layer, or with the span filtered out: then
            // there is no trace to join.
            Ok(parent) => drop(span.set_parent(parent)),
            Err(e) => tracing::warn!(
                task = def.name(),
                id = exec.id,
                "execution {} of `{}`: {e}; its span starts a new trace",
                exec.id,
                def.name()
            ),
        }
    }
    span
}

/// Without the `otel` feature: no span.
#[cfg(not(feature = "otel"))]
pub(crate) fn task_span(_def: &TaskDef, _exec: &ClaimedExec) -> Span {
    Span::none()
}

/// Writes how the execution ended on its span: `outcome`, and an error status for an
/// execution that did not succeed.
pub(crate) fn record_outcome(span: &Span, outcome: &Outcome) {
    if span.is_none() {
        return;
    }
    span.record("outcome", outcome_name(outcome));
    if let Outcome::Failed(message)
    | Outcome::Invalid(message)
    | Outcome::Interrupted(message)
    | Outcome::Cancelled(message) = outcome
    {
        span.record("otel.status_code", "error");
        span.record("otel.status_description", message.as_str());
    }
}
