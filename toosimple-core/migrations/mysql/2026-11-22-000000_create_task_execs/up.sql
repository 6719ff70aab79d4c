-- MariaDB >= 10.6 and MySQL >= 8. Names, states and keys are compared byte for byte (binary
-- collation), as PostgreSQL and SQLite compare them; times are DATETIME(6) holding UTC.
CREATE TABLE task_execs (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    task_name VARCHAR(255) NOT NULL,
    args LONGTEXT NOT NULL,
    queue VARCHAR(255) NOT NULL,
    priority INTEGER NOT NULL DEFAULT 0,
    state VARCHAR(32) NOT NULL,
    due DATETIME(6) NOT NULL,
    created DATETIME(6) NOT NULL,
    started DATETIME(6),
    finished DATETIME(6),
    result LONGTEXT,
    error LONGTEXT,
    retries INTEGER NOT NULL DEFAULT 0,
    retry_delay BIGINT NOT NULL DEFAULT 0,
    replaced_by BIGINT,
    worker VARCHAR(255),
    unique_key VARCHAR(255),
    -- Unique tasks: MariaDB and MySQL have no partial index, so the key is copied into a
    -- generated column only while the row is pending (NULL otherwise, and NULLs never clash):
    -- a unique index on it allows at most one pending execution per key.
    unique_pending VARCHAR(255) AS (CASE WHEN state IN ('sleeping', 'queued') THEN unique_key END) STORED,
    CONSTRAINT task_execs_replaced_by FOREIGN KEY (replaced_by) REFERENCES task_execs (id) ON DELETE SET NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- The claim walks queued rows in claim order (highest priority, then oldest due) and stops
-- after its batch: without partial indexes, the state leads the key.
CREATE INDEX task_execs_claim ON task_execs (state, priority DESC, due, id);
-- Waking sleeping rows whose due has come.
CREATE INDEX task_execs_wake ON task_execs (state, due);
CREATE UNIQUE INDEX task_execs_unique_pending ON task_execs (unique_pending);
-- Listing and the admin's filters.
CREATE INDEX task_execs_state ON task_execs (state, id);
CREATE INDEX task_execs_task_name ON task_execs (task_name, id);
