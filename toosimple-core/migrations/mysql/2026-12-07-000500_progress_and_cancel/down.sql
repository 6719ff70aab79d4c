ALTER TABLE task_execs DROP COLUMN cancel_requested;
ALTER TABLE task_execs DROP COLUMN progress_message;
ALTER TABLE task_execs DROP COLUMN progress;
