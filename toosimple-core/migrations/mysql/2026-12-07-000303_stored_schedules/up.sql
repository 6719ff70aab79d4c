-- Schedules created at run time (API, `app schedule add`, the admin), beside the #[schedule]s
-- compiled in. Their occurrences are materialized exactly once as the compiled ones are: through
-- their schedule_execs row (same name) and the unique (schedule, due) index of task_execs.
CREATE TABLE stored_schedules (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    name VARCHAR(255) NOT NULL UNIQUE,
    task_name VARCHAR(255) NOT NULL,
    -- JSON object of the task's arguments.
    args LONGTEXT NOT NULL,
    -- Either a cron expression (read in tz) ...
    cron VARCHAR(255),
    tz VARCHAR(64) NOT NULL,
    -- ... or a step from start: seconds, or calendar months (month_end: the month's last day).
    interval_seconds BIGINT,
    interval_months INTEGER,
    month_end BOOLEAN NOT NULL DEFAULT FALSE,
    start DATETIME(6) NOT NULL,
    -- Occurrences left to enqueue (NULL: for ever), and none after `ends`. (Neither is called
    -- repeat or until: both are reserved words in MySQL.)
    repeats_left INTEGER,
    ends DATETIME(6),
    -- A daily window, minutes after midnight UTC (end excluded; start > end wraps midnight),
    -- and the days of the week as bits, Monday = 1, Sunday = 64.
    between_start INTEGER,
    between_end INTEGER,
    weekdays INTEGER,
    queue VARCHAR(255),
    paused BOOLEAN NOT NULL DEFAULT FALSE,
    created DATETIME(6) NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
