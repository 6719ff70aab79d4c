//! Traces through OpenTelemetry (the `otel` feature): a task's span is a child of the span
//! that queued it, across processes and restarts.
//!
//! Each enqueue (`queue`, `queue_many`, `queue_in`, `with(…)`, [`enqueue_by_name`]) stores the
//! W3C trace context of the current [`tracing`] span in the row's `trace_context` column; a
//! worker built with the feature runs the execution in a `toosimple.task` span whose
//! OpenTelemetry parent is that context. A call made outside any traced span stores nothing,
//! and its task's span starts a trace of its own.
//!
//! toosimple exports nothing itself: the application installs
//! [`tracing_opentelemetry`]'s layer over its own tracer provider and exporter (OTLP, Jaeger,
//! stdout…), with the versions of the OpenTelemetry crates re-exported here.
//!
//! ```
//! use toosimple_core::otel::{current_trace_context, parse_trace_context};
//!
//! // Outside any span there is nothing to store.
//! assert_eq!(current_trace_context(), None);
//! // What a row stores: a `traceparent`, then a newline and a `tracestate` when there is one.
//! let stored = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\nvendor=abc";
//! assert!(parse_trace_context(stored).is_ok());
//! assert!(parse_trace_context("not a trace context").is_err());
//! ```
//!
//! [`enqueue_by_name`]: crate::enqueue_by_name

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::store::NewTaskExec;

/// The OpenTelemetry API crate toosimple is built with: a span context made with another
/// version is not seen.
pub use opentelemetry;
/// The OpenTelemetry SDK toosimple is built with, for the application's tracer provider.
pub use opentelemetry_sdk;
/// The layer that turns [`tracing`] spans into OpenTelemetry spans, in the version toosimple
/// reads its contexts with.
pub use tracing_opentelemetry;

const TRACEPARENT: &str = "traceparent";
const TRACESTATE: &str = "tracestate";

/// A stored trace context that is not W3C trace context: the task still runs, its span
/// starting a trace of its own.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "trace context {shown:?} is not a W3C trace context: write a `traceparent` \
     (`00-<32 hex digits of trace id>-<16 hex digits of parent span id>-<2 hex digits of flags>`, \
     lower case), then optionally a newline and a `tracestate`"
)]
pub struct InvalidTraceContext {
    /// The stored text, cut at 100 characters.
    pub shown: String,
}

/// The trace context to store for a row enqueued now: the current [`tracing`] span's
/// OpenTelemetry context (or, outside any traced span, OpenTelemetry's own current context),
/// as its `traceparent`, then a newline and its `tracestate` when that is not empty. `None`
/// when no valid span context is current.
///
/// ```
/// assert_eq!(toosimple_core::otel::current_trace_context(), None);
/// ```
pub fn current_trace_context() -> Option<String> {
    let mut context = tracing::Span::current().context();
    if !context.span().span_context().is_valid() {
        context = opentelemetry::Context::current();
        if !context.span().span_context().is_valid() {
            return None;
        }
    }
    let mut headers = Headers::default();
    TraceContextPropagator::new().inject_context(&context, &mut headers);
    let mut stored = headers.traceparent?;
    if let Some(state) = headers.tracestate.filter(|s| !s.is_empty()) {
        stored.push('\n');
        stored.push_str(&state);
    }
    Some(stored)
}

/// The OpenTelemetry context a stored trace context names (see [`current_trace_context`]), to
/// make the parent of a span with
/// [`OpenTelemetrySpanExt::set_parent`](tracing_opentelemetry::OpenTelemetrySpanExt::set_parent).
///
/// # Errors
/// [`InvalidTraceContext`] when `stored` is not a valid `traceparent` (an unreadable
/// `tracestate` alone is dropped, as W3C asks).
///
/// ```
/// use toosimple_core::otel::opentelemetry::trace::TraceContextExt;
///
/// let stored = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
/// let parent = toosimple_core::otel::parse_trace_context(stored)?;
/// let span = parent.span();
/// assert_eq!(span.span_context().trace_id().to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
/// assert_eq!(span.span_context().span_id().to_string(), "00f067aa0ba902b7");
/// # Ok::<(), toosimple_core::otel::InvalidTraceContext>(())
/// ```
pub fn parse_trace_context(stored: &str) -> Result<opentelemetry::Context, InvalidTraceContext> {
    let (traceparent, tracestate) = match stored.split_once('\n') {
        Some((parent, state)) => (parent, Some(state)),
        None => (stored, None),
    };
    let headers = StoredHeaders {
        traceparent,
        tracestate,
    };
    let context = TraceContextPropagator::new().extract(&headers);
    if context.span().span_context().is_valid() {
        Ok(context)
    } else {
        Err(InvalidTraceContext {
            shown: stored.chars().take(100).collect(),
        })
    }
}

/// Stores the current trace context in each of `rows`: taken once per call, however many rows.
pub(crate) fn stamp(rows: &mut [NewTaskExec]) {
    let Some(context) = current_trace_context() else {
        return;
    };
    for row in rows {
        row.trace_context = Some(context.clone());
    }
}

/// The two headers the propagator writes.
#[derive(Default)]
struct Headers {
    traceparent: Option<String>,
    tracestate: Option<String>,
}

impl Injector for Headers {
    fn set(&mut self, key: &str, value: String) {
        match key {
            TRACEPARENT => self.traceparent = Some(value),
            TRACESTATE => self.tracestate = Some(value),
            _ => {}
        }
    }
}

/// A stored trace context, read as the two headers it was made from.
struct StoredHeaders<'a> {
    traceparent: &'a str,
    tracestate: Option<&'a str>,
}

impl Extractor for StoredHeaders<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        match key {
            TRACEPARENT => Some(self.traceparent),
            TRACESTATE => self.tracestate,
            _ => None,
        }
    }

    fn keys(&self) -> Vec<&str> {
        let mut keys = vec![TRACEPARENT];
        keys.extend(self.tracestate.map(|_| TRACESTATE));
        keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};

    fn stored_of(state: TraceState) -> Option<String> {
        let span = SpanContext::new(
            TraceId::from(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736),
            SpanId::from(0x00f0_67aa_0ba9_02b7),
            TraceFlags::SAMPLED,
            false,
            state,
        );
        let _attached = opentelemetry::Context::new()
            .with_remote_span_context(span)
            .attach();
        current_trace_context()
    }

    #[test]
    fn a_context_round_trips_with_its_tracestate() {
        let state = TraceState::from_key_value([("vendor", "abc"), ("other", "x y")]).unwrap();
        let stored = stored_of(state.clone()).unwrap();
        assert_eq!(
            stored,
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\nvendor=abc,other=x y"
        );
        let parsed = parse_trace_context(&stored).unwrap();
        let span = parsed.span();
        let context = span.span_context();
        assert_eq!(context.span_id(), SpanId::from(0x00f0_67aa_0ba9_02b7));
        assert!(context.is_sampled());
        assert_eq!(context.trace_state(), &state);
    }

    #[test]
    fn an_empty_tracestate_stores_the_traceparent_alone() {
        assert_eq!(
            stored_of(TraceState::default()).as_deref(),
            Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
        );
    }

    #[test]
    fn nothing_current_stores_nothing() {
        assert_eq!(current_trace_context(), None);
    }

    #[test]
    fn corrupt_contexts_are_refused_with_what_to_write() {
        for bad in [
            "",
            "garbage",
            "00-00000000000000000000000000000000-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "\n00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            let error = parse_trace_context(bad).unwrap_err();
            assert!(error.to_string().contains("traceparent"), "{error}");
        }
        let long = "x".repeat(10_000);
        assert_eq!(parse_trace_context(&long).unwrap_err().shown.len(), 100);
    }

    #[test]
    fn an_unreadable_tracestate_is_dropped_not_the_parent() {
        let stored = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\n=,=,bad state";
        let parsed = parse_trace_context(stored).unwrap();
        assert_eq!(parsed.span().span_context().trace_state().header(), "");
    }
}
