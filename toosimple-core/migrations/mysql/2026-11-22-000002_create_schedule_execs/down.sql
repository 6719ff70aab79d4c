DROP INDEX task_execs_schedule_due ON task_execs; ALTER TABLE task_execs DROP COLUMN schedule; DROP TABLE schedule_execs;
