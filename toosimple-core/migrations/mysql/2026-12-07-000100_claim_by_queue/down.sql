CREATE INDEX task_execs_claim ON task_execs (state, priority DESC, due, id);
DROP INDEX task_execs_queued ON task_execs;
