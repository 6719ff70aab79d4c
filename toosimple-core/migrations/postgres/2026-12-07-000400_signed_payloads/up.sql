-- Signed payloads: with TOOSIMPLE_SECRET_KEY set, the HMAC-SHA256 of what the row asks a
-- worker to do (task, arguments, queue, priority, time limit, TTL, hook), `v1:` and hex.
-- NULL on rows enqueued without a key; a worker with a key refuses such rows.
ALTER TABLE task_execs ADD COLUMN signature TEXT;
