CREATE INDEX task_execs_claim ON task_execs (priority DESC, due, id) WHERE state = 'queued';
DROP INDEX task_execs_queued;
