-- A hook (by its registered name) that each execution the schedule enqueues is handed to once
-- finished, like a #[schedule]'s hook = ... .
ALTER TABLE stored_schedules ADD COLUMN hook TEXT;
