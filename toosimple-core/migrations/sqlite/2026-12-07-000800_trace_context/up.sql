-- Traces (the `otel` feature): the W3C trace context of the span that enqueued the row, its
-- `traceparent`, then, when it has one, a newline and its `tracestate`. The worker makes it the
-- parent of the task's span. NULL without the feature or outside a traced span.
ALTER TABLE task_execs ADD COLUMN trace_context TEXT;
