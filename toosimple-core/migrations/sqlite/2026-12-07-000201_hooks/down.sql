DROP INDEX task_execs_hook_pending;
ALTER TABLE task_execs DROP COLUMN hook_error;
ALTER TABLE task_execs DROP COLUMN hook_ran;
ALTER TABLE task_execs DROP COLUMN hook;
