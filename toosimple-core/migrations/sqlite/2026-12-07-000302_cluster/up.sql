-- Workers started by `app cluster`: the supervisor's label, and how many times the
-- supervisor restarted this worker (after a crash, or to recycle it).
ALTER TABLE worker_statuses ADD COLUMN cluster TEXT;
ALTER TABLE worker_statuses ADD COLUMN restarts INTEGER NOT NULL DEFAULT 0;
