DROP INDEX task_execs_processing; DROP TABLE worker_statuses;
