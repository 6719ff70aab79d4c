CREATE TABLE task_execs (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    task_name TEXT NOT NULL,
    args TEXT NOT NULL,
    queue TEXT NOT NULL,
    priority INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL,
    due TIMESTAMP NOT NULL,
    created TIMESTAMP NOT NULL,
    started TIMESTAMP,
    finished TIMESTAMP,
    result TEXT,
    error TEXT,
    retries INTEGER NOT NULL DEFAULT 0,
    retry_delay BIGINT NOT NULL DEFAULT 0,
    replaced_by BIGINT REFERENCES task_execs (id) ON DELETE SET NULL,
    worker TEXT,
    unique_key TEXT
);

-- The claim walks queued rows in claim order (highest priority, then oldest due) and stops
-- after its batch; queue and task filters are checked on the way, so no sort of the queue.
CREATE INDEX task_execs_claim ON task_execs (priority DESC, due, id) WHERE state = 'queued';
-- Waking sleeping rows whose due has come.
CREATE INDEX task_execs_wake ON task_execs (due) WHERE state = 'sleeping';
-- Unique tasks: at most one pending execution per task and arguments.
CREATE UNIQUE INDEX task_execs_unique_pending ON task_execs (unique_key)
    WHERE unique_key IS NOT NULL AND state IN ('sleeping', 'queued');
-- Listing and the admin's filters.
CREATE INDEX task_execs_state ON task_execs (state, id);
CREATE INDEX task_execs_task_name ON task_execs (task_name, id);
CREATE INDEX task_execs_replaced_by ON task_execs (replaced_by) WHERE replaced_by IS NOT NULL;
