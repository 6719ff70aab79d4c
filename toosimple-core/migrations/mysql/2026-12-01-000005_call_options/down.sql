ALTER TABLE task_execs DROP COLUMN result_ttl;
ALTER TABLE task_execs DROP COLUMN timeout_ms;
