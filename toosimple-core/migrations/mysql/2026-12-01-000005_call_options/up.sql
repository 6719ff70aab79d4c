-- Options one call may set beyond its task's: a time limit (milliseconds) and how long the
-- finished execution is kept (seconds). NULL: the task's own limit, and kept until purged.
ALTER TABLE task_execs ADD COLUMN timeout_ms BIGINT;
ALTER TABLE task_execs ADD COLUMN result_ttl BIGINT;
-- Retention finds expiring rows by finish time: without partial indexes, the index of
-- 000003 on `finished` already serves it.
