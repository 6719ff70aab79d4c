DROP TABLE stored_schedules;
