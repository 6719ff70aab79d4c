-- Flows (django-pq's Flow/FlowStore): task calls run one after another, each enqueued only
-- when the one before succeeded. A flow's steps are stored whole when it starts (each as the
-- row it will enqueue, signed then); `task_execs.flow_id` marks the executions of a flow, so
-- that the worker that records one's outcome advances the flow in the same transaction, and
-- rows of no flow cost nothing more.
CREATE TABLE flows (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    name VARCHAR(255),
    -- running, succeeded or failed.
    state VARCHAR(16) NOT NULL,
    steps INTEGER NOT NULL,
    created DATETIME(6) NOT NULL,
    -- Written by each change: the update that locks the flow while it advances.
    updated DATETIME(6) NOT NULL,
    finished DATETIME(6),
    -- The execution that ended the flow (its last step's, or the failed one's): the flow's
    -- rows are deleted with it when it expires.
    final_exec BIGINT,
    error LONGTEXT,
    INDEX flows_name (name, id),
    INDEX flows_state (state, id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
CREATE TABLE flow_steps (
    flow_id BIGINT NOT NULL,
    position INTEGER NOT NULL,
    task_name VARCHAR(255) NOT NULL,
    args LONGTEXT NOT NULL,
    queue VARCHAR(255) NOT NULL,
    priority INTEGER NOT NULL,
    -- When it runs once enqueued: at `due`, or `delay_ms` after it is enqueued, else at once.
    due DATETIME(6),
    delay_ms BIGINT,
    retries INTEGER NOT NULL,
    retry_delay BIGINT NOT NULL,
    timeout_ms BIGINT,
    result_ttl BIGINT,
    hook VARCHAR(255),
    signature VARCHAR(255),
    -- waiting, enqueued, succeeded, failed or skipped.
    state VARCHAR(16) NOT NULL,
    -- Its latest execution (a retry or an interruption's replacement moves it on).
    exec_id BIGINT,
    PRIMARY KEY (flow_id, position),
    INDEX flow_steps_enqueued (state, exec_id),
    CONSTRAINT flow_steps_flow FOREIGN KEY (flow_id) REFERENCES flows (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
ALTER TABLE task_execs ADD COLUMN flow_id BIGINT;
CREATE INDEX task_execs_flow ON task_execs (flow_id);
