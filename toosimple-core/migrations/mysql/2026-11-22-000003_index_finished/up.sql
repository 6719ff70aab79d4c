-- Purging old executions and the admin's per-minute chart read by finish time.
CREATE INDEX task_execs_finished ON task_execs (finished);
