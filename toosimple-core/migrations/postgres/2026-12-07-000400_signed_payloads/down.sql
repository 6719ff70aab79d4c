ALTER TABLE task_execs DROP COLUMN signature;
