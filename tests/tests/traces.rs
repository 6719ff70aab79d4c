//! Traces (the `otel` feature, on for the workspace's tests through this crate's
//! dev-dependencies): an enqueue stores its span's W3C trace context in the row, and the worker
//! runs the task in a `toosimple.task` span whose OpenTelemetry parent is the span that queued
//! it, on SQLite, PostgreSQL and MariaDB. Spans go through the real tracing-opentelemetry layer
//! to the SDK's in-memory exporter.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use diesel::Connection;
use opentelemetry::trace::{SpanId, Status, TraceContextExt, TraceId, TracerProvider};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use toosimple_core::{Error, State};
use toosimple_tests::tasks::{add, fail_with, shout};
use toosimple_tests::{TestDb, backend_suite};
use toosimple_worker::clock::TestClock;
use toosimple_worker::testing::drain;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;

backend_suite!(
    a_task_span_is_a_child_of_the_span_that_queued_it,
    queue_many_stores_the_context_in_every_row,
    a_task_queued_outside_any_span_starts_a_trace,
    a_corrupt_trace_context_still_runs_as_a_root,
    a_retry_stays_in_the_trace_of_its_request,
);

/// The exporter behind this process's one global subscriber: the worker runs tasks on threads
/// of its own, which a thread's default subscriber would not reach.
fn exporter() -> &'static InMemorySpanExporter {
    static EXPORTER: OnceLock<(InMemorySpanExporter, SdkTracerProvider)> = OnceLock::new();
    &EXPORTER
        .get_or_init(|| {
            let exporter = InMemorySpanExporter::default();
            let provider = SdkTracerProvider::builder()
                .with_simple_exporter(exporter.clone())
                .build();
            let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("tests"));
            tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer))
                .expect("no other global subscriber in this test binary");
            (exporter, provider)
        })
        .0
}

/// A queue of this test's own: the tests of one process share the exporter.
fn own_queue() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("traces-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// The finished `toosimple.task` spans of executions on `queue`.
fn task_spans(queue: &str) -> Vec<SpanData> {
    exporter()
        .get_finished_spans()
        .expect("the exporter's spans")
        .into_iter()
        .filter(|s| s.name == "toosimple.task" && attribute(s, "queue").as_deref() == Some(queue))
        .collect()
}

fn attribute(span: &SpanData, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.to_string())
}

/// Runs `enqueue` inside a span "request"; returns its trace id and span id.
fn in_request(enqueue: impl FnOnce()) -> (TraceId, SpanId) {
    exporter();
    let request = tracing::info_span!("request");
    let ids = {
        let context = request.context();
        let span = context.span();
        (
            span.span_context().trace_id(),
            span.span_context().span_id(),
        )
    };
    assert_ne!(
        ids.0,
        TraceId::INVALID,
        "the layer gives the request a trace"
    );
    request.in_scope(enqueue);
    ids
}

fn drain_all(db: &TestDb) -> usize {
    drain(&db.store, &TestClock::new())
        .expect("drain the queue")
        .executions
}

/// Asserts each span is a child of the request `(trace, parent)`, through the stored context.
fn assert_children(spans: &[SpanData], (trace, parent): (TraceId, SpanId)) {
    for span in spans {
        assert_eq!(span.span_context.trace_id(), trace, "{span:?}");
        assert_eq!(span.parent_span_id, parent, "{span:?}");
        // Read back from the row, not inherited in memory.
        assert!(span.parent_span_is_remote, "{span:?}");
    }
}

/// A sync task (a runner thread), a sync task with a time limit (the blocking pool), an async
/// task (the task runtime), and `queue_in` inside the caller's transaction: each one's span
/// is a child of the request.
fn a_task_span_is_a_child_of_the_span_that_queued_it(db: &TestDb) {
    let queue = own_queue();
    let mut ids = Vec::new();
    let request = in_request(|| {
        ids.push(add::with().on_queue(&queue).queue(1, 2).unwrap().id());
        ids.push(
            add::with()
                .on_queue(&queue)
                .timeout(Duration::from_secs(60))
                .queue(3, 4)
                .unwrap()
                .id(),
        );
        ids.push(
            shout::with()
                .on_queue(&queue)
                .queue("hi".into())
                .unwrap()
                .id(),
        );
        let mut conn = db.store.connection().unwrap();
        let in_tx = conn
            .transaction::<_, Error, _>(|c| add::with().on_queue(&queue).queue_in(c, 5, 6))
            .unwrap();
        ids.push(in_tx.id());
    });
    assert_eq!(db.count("trace_context IS NOT NULL"), 4);

    assert_eq!(drain_all(db), 4);

    let spans = task_spans(&queue);
    assert_eq!(spans.len(), 4, "{spans:#?}");
    assert_children(&spans, request);
    let mut traced: Vec<i64> = spans
        .iter()
        .map(|s| attribute(s, "id").unwrap().parse().unwrap())
        .collect();
    traced.sort_unstable();
    ids.sort_unstable();
    assert_eq!(traced, ids);
    for span in &spans {
        assert_eq!(attribute(span, "outcome").as_deref(), Some("succeeded"));
        assert!(
            attribute(span, "task").is_some_and(|t| t.ends_with("add") || t.ends_with("shout"))
        );
    }
}

/// Past 100 rows PostgreSQL's bulk enqueue goes through `COPY FROM`: the context is in every
/// row there too.
fn queue_many_stores_the_context_in_every_row(db: &TestDb) {
    let queue = own_queue();
    let request = in_request(|| {
        add::with()
            .on_queue(&queue)
            .queue_many((0..150).map(|i| (i, 1)))
            .unwrap();
    });
    assert_eq!(db.count("trace_context IS NOT NULL"), 150);

    assert_eq!(drain_all(db), 150);

    let spans = task_spans(&queue);
    assert_eq!(spans.len(), 150);
    assert_children(&spans, request);
}

fn a_task_queued_outside_any_span_starts_a_trace(db: &TestDb) {
    exporter();
    let queue = own_queue();
    add::with().on_queue(&queue).queue(1, 1).unwrap();
    assert_eq!(db.count("trace_context IS NULL"), 1);

    assert_eq!(drain_all(db), 1);

    let spans = task_spans(&queue);
    assert_eq!(spans.len(), 1, "{spans:#?}");
    assert_eq!(
        spans[0].parent_span_id,
        SpanId::INVALID,
        "a root: {spans:#?}"
    );
    assert_ne!(spans[0].span_context.trace_id(), TraceId::INVALID);
}

/// Bad input never breaks a task: a row whose stored context is not W3C trace context runs,
/// and its span starts a trace of its own.
fn a_corrupt_trace_context_still_runs_as_a_root(db: &TestDb) {
    let queue = own_queue();
    let mut handles = Vec::new();
    let (request_trace, _) = in_request(|| {
        for i in 0..3 {
            handles.push(add::with().on_queue(&queue).queue(i, i).unwrap());
        }
    });
    let corrupt = [
        "garbage",
        "00-00000000000000000000000000000000-0000000000000000-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
    ];
    for (handle, bad) in handles.iter().zip(corrupt) {
        db.execute(&format!(
            "UPDATE task_execs SET trace_context = '{bad}' WHERE id = {}",
            handle.id()
        ));
    }

    assert_eq!(drain_all(db), 3);

    for handle in &handles {
        assert_eq!(handle.state().unwrap(), State::Succeeded);
    }
    let spans = task_spans(&queue);
    assert_eq!(spans.len(), 3, "{spans:#?}");
    for span in &spans {
        assert_eq!(span.parent_span_id, SpanId::INVALID, "{span:?}");
        assert_ne!(span.span_context.trace_id(), request_trace, "{span:?}");
        assert_eq!(attribute(span, "outcome").as_deref(), Some("succeeded"));
    }
}

/// A retry's row copies the context of the run it replaces: every run of a failing task is a
/// child of the request, each with an error status.
fn a_retry_stays_in_the_trace_of_its_request(db: &TestDb) {
    let queue = own_queue();
    let request = in_request(|| {
        fail_with::with()
            .on_queue(&queue)
            .retries(2)
            .retry_delay(Duration::from_secs(1))
            .queue("down".into())
            .unwrap();
    });

    assert_eq!(drain_all(db), 3);

    let spans = task_spans(&queue);
    assert_eq!(spans.len(), 3, "the run and its two retries: {spans:#?}");
    assert_children(&spans, request);
    for span in &spans {
        assert_eq!(attribute(span, "outcome").as_deref(), Some("failed"));
        assert!(matches!(span.status, Status::Error { .. }), "{span:?}");
    }
    assert_eq!(db.count("trace_context IS NOT NULL"), 3);
}
