DROP INDEX task_execs_processing ON task_execs; DROP TABLE worker_statuses;
