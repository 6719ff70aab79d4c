-- The tasks each worker links (a JSON array of names), so that `status` and the admin can
-- name the queued executions no online worker can run. NULL: a worker that did not say.
ALTER TABLE worker_statuses ADD COLUMN tasks TEXT;
