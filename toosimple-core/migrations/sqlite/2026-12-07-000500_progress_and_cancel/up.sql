-- Progress and cancelling a running task: a running task reports a fraction (0 to 1) and a
-- message, which its worker writes at most once a second (the latest wins); `cancel` of a
-- running execution writes `cancel_requested`, which its worker reads back at each heartbeat.
ALTER TABLE task_execs ADD COLUMN progress REAL;
ALTER TABLE task_execs ADD COLUMN progress_message TEXT;
ALTER TABLE task_execs ADD COLUMN cancel_requested TIMESTAMP;
