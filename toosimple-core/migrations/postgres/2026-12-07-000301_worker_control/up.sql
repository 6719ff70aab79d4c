-- Remote control of a running worker: `app stop` and the admin's stop button write
-- `stop_request` ('graceful' or 'terminate'), which the worker reads back at each heartbeat.
-- `handled` counts the executions it ran since it started (written with each heartbeat), and
-- `tick` is its heartbeat interval in seconds, which `app ping` waits on.
ALTER TABLE worker_statuses ADD COLUMN stop_request TEXT;
ALTER TABLE worker_statuses ADD COLUMN handled BIGINT NOT NULL DEFAULT 0;
ALTER TABLE worker_statuses ADD COLUMN tick DOUBLE PRECISION NOT NULL DEFAULT 1;
