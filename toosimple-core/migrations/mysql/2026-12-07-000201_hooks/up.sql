-- Hooks: the registered hook a finished execution is handed to (the call's, its schedule's or
-- its task's, by name), when a worker ran it, and how it failed if it did. (No partial index of
-- the waiting hooks here: the pass that looks for them reads the index on `finished`.)
ALTER TABLE task_execs ADD COLUMN hook VARCHAR(255);
ALTER TABLE task_execs ADD COLUMN hook_ran DATETIME(6);
ALTER TABLE task_execs ADD COLUMN hook_error LONGTEXT;
