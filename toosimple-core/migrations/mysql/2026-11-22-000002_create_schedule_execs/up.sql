CREATE TABLE schedule_execs (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    name VARCHAR(255) NOT NULL UNIQUE,
    -- The latest occurrence materialized; NULL until the first (run_on_creation).
    last_due DATETIME(6),
    last_task BIGINT,
    -- 'active', or 'invalid' when no registered schedule has this name.
    state VARCHAR(32) NOT NULL,
    CONSTRAINT schedule_execs_last_task FOREIGN KEY (last_task) REFERENCES task_execs (id) ON DELETE SET NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
-- The schedule an execution was materialized from: one execution per schedule and occurrence,
-- whatever happens to the materializing transaction (rows without a schedule hold NULL, which
-- never clashes).
ALTER TABLE task_execs ADD COLUMN schedule VARCHAR(255);
CREATE UNIQUE INDEX task_execs_schedule_due ON task_execs (schedule, due);
