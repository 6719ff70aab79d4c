CREATE TABLE worker_statuses (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    label VARCHAR(255) NOT NULL UNIQUE,
    -- JSON arrays of queue names; an empty `queues` means every queue.
    queues LONGTEXT NOT NULL,
    excluded_queues LONGTEXT NOT NULL,
    -- Seconds without a heartbeat after which the worker counts as dead.
    timeout DOUBLE NOT NULL,
    last_tick DATETIME(6) NOT NULL,
    started DATETIME(6) NOT NULL,
    stopped DATETIME(6),
    exit_code INTEGER,
    exit_log LONGTEXT
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
CREATE INDEX task_execs_processing ON task_execs (state, worker);
