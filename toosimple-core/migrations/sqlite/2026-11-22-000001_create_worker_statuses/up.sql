CREATE TABLE worker_statuses (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    label TEXT NOT NULL UNIQUE,
    -- JSON arrays of queue names; an empty `queues` means every queue.
    queues TEXT NOT NULL,
    excluded_queues TEXT NOT NULL,
    -- Seconds without a heartbeat after which the worker counts as dead.
    timeout DOUBLE PRECISION NOT NULL,
    last_tick TIMESTAMP NOT NULL,
    started TIMESTAMP NOT NULL,
    stopped TIMESTAMP,
    exit_code INTEGER,
    exit_log TEXT
);
CREATE INDEX task_execs_processing ON task_execs (worker) WHERE state = 'processing';
