ALTER TABLE worker_statuses DROP COLUMN tasks;
