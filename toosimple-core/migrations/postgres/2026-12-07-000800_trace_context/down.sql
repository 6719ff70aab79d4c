ALTER TABLE task_execs DROP COLUMN trace_context;
