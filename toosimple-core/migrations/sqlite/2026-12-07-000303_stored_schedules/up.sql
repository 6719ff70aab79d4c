-- Schedules created at run time (API, `app schedule add`, the admin), beside the #[schedule]s
-- compiled in. Their occurrences are materialized exactly once as the compiled ones are: through
-- their schedule_execs row (same name) and the unique (schedule, due) index of task_execs.
CREATE TABLE stored_schedules (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    name TEXT NOT NULL UNIQUE,
    task_name TEXT NOT NULL,
    -- JSON object of the task's arguments.
    args TEXT NOT NULL,
    -- Either a cron expression (read in tz) ...
    cron TEXT,
    tz TEXT NOT NULL,
    -- ... or a step from start: seconds, or calendar months (month_end: the month's last day).
    interval_seconds BIGINT,
    interval_months INTEGER,
    month_end BOOLEAN NOT NULL DEFAULT 0,
    start TIMESTAMP NOT NULL,
    -- Occurrences left to enqueue (NULL: for ever), and none after `ends`. (Neither is called
    -- repeat or until: both are reserved words in MySQL.)
    repeats_left INTEGER,
    ends TIMESTAMP,
    -- A daily window, minutes after midnight UTC (end excluded; start > end wraps midnight),
    -- and the days of the week as bits, Monday = 1, Sunday = 64.
    between_start INTEGER,
    between_end INTEGER,
    weekdays INTEGER,
    queue TEXT,
    paused BOOLEAN NOT NULL DEFAULT 0,
    created TIMESTAMP NOT NULL
);
