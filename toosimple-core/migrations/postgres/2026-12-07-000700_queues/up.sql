-- Queue settings edited at run time (API, `app queue ...`, the admin). A queue without a row
-- behaves as before: served, no limit, its tasks' own retries and time limits.
CREATE TABLE queues (
    name TEXT PRIMARY KEY NOT NULL,
    -- Workers claim nothing from a paused queue; what runs finishes.
    paused BOOLEAN NOT NULL DEFAULT FALSE,
    -- At most this many executions of the queue run at once across every worker (1: serial);
    -- NULL: no limit. Enforced inside the claim's transaction, not in a worker's memory.
    concurrency_limit INTEGER,
    -- What executions that set none of their own get: retries, and a time limit in ms.
    default_retries INTEGER,
    default_timeout_ms BIGINT,
    updated TIMESTAMP NOT NULL
);
-- Whether a row's retries are its own (its #[task]'s, its call's, or what a retry has left)
-- rather than the default 0, which its queue's default retries replace when it is claimed.
-- Rows stored before this migration keep theirs.
ALTER TABLE task_execs ADD COLUMN own_retries BOOLEAN NOT NULL DEFAULT TRUE;
