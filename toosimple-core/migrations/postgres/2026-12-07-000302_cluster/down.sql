ALTER TABLE worker_statuses DROP COLUMN restarts;
ALTER TABLE worker_statuses DROP COLUMN cluster;
