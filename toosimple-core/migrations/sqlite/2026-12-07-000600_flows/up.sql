-- Flows (django-pq's Flow/FlowStore): task calls run one after another, each enqueued only
-- when the one before succeeded. A flow's steps are stored whole when it starts (each as the
-- row it will enqueue, signed then); `task_execs.flow_id` marks the executions of a flow, so
-- that the worker that records one's outcome advances the flow in the same transaction, and
-- rows of no flow cost nothing more.
CREATE TABLE flows (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    name TEXT,
    -- running, succeeded or failed.
    state TEXT NOT NULL,
    steps INTEGER NOT NULL,
    created TIMESTAMP NOT NULL,
    -- Written by each change: the update that locks the flow while it advances.
    updated TIMESTAMP NOT NULL,
    finished TIMESTAMP,
    -- The execution that ended the flow (its last step's, or the failed one's): the flow's
    -- rows are deleted with it when it expires.
    final_exec BIGINT,
    error TEXT
);
CREATE INDEX flows_name ON flows (name, id);
CREATE INDEX flows_running ON flows (id) WHERE state = 'running';
CREATE TABLE flow_steps (
    flow_id BIGINT NOT NULL REFERENCES flows (id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    task_name TEXT NOT NULL,
    args TEXT NOT NULL,
    queue TEXT NOT NULL,
    priority INTEGER NOT NULL,
    -- When it runs once enqueued: at `due`, or `delay_ms` after it is enqueued, else at once.
    due TIMESTAMP,
    delay_ms BIGINT,
    retries INTEGER NOT NULL,
    retry_delay BIGINT NOT NULL,
    timeout_ms BIGINT,
    result_ttl BIGINT,
    hook TEXT,
    signature TEXT,
    -- waiting, enqueued, succeeded, failed or skipped.
    state TEXT NOT NULL,
    -- Its latest execution (a retry or an interruption's replacement moves it on).
    exec_id BIGINT,
    PRIMARY KEY (flow_id, position)
);
CREATE INDEX flow_steps_enqueued ON flow_steps (exec_id) WHERE state = 'enqueued';
ALTER TABLE task_execs ADD COLUMN flow_id BIGINT;
CREATE INDEX task_execs_flow ON task_execs (flow_id) WHERE flow_id IS NOT NULL;
