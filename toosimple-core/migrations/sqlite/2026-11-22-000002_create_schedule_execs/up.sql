CREATE TABLE schedule_execs (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    name TEXT NOT NULL UNIQUE,
    -- The latest occurrence materialized; NULL until the first (run_on_creation).
    last_due TIMESTAMP,
    last_task BIGINT REFERENCES task_execs (id) ON DELETE SET NULL,
    -- 'active', or 'invalid' when no registered schedule has this name.
    state TEXT NOT NULL
);
-- The schedule an execution was materialized from: one execution per schedule and occurrence,
-- whatever happens to the materializing transaction.
ALTER TABLE task_execs ADD COLUMN schedule TEXT;
CREATE UNIQUE INDEX task_execs_schedule_due ON task_execs (schedule, due) WHERE schedule IS NOT NULL;
