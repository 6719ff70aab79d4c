-- The claim reads one range of this index per queue it serves (highest priority, then oldest
-- due, first in), so queued rows of queues it does not serve are never read: a worker beside a
-- deep backlog of another queue claims as fast as without it. Without partial indexes, the
-- state leads the key.
CREATE INDEX task_execs_queued ON task_execs (state, queue, priority DESC, due, id);
-- The claim's index before: every claim walked all queued rows in claim order, those of
-- excluded queues too.
DROP INDEX task_execs_claim ON task_execs;
