-- Hooks: the registered hook a finished execution is handed to (the call's, its schedule's or
-- its task's, by name), when a worker ran it, and how it failed if it did.
ALTER TABLE task_execs ADD COLUMN hook TEXT;
ALTER TABLE task_execs ADD COLUMN hook_ran TIMESTAMP;
ALTER TABLE task_execs ADD COLUMN hook_error TEXT;
-- Workers find the finished executions whose hook has not run (their worker died first, or
-- nobody ran them: a cancel) without walking the history.
CREATE INDEX task_execs_hook_pending ON task_execs (finished)
    WHERE hook IS NOT NULL AND hook_ran IS NULL AND finished IS NOT NULL;
