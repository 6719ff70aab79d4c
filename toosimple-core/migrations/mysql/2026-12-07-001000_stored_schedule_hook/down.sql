ALTER TABLE stored_schedules DROP COLUMN hook;
