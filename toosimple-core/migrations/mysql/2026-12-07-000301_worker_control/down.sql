ALTER TABLE worker_statuses DROP COLUMN tick;
ALTER TABLE worker_statuses DROP COLUMN handled;
ALTER TABLE worker_statuses DROP COLUMN stop_request;
