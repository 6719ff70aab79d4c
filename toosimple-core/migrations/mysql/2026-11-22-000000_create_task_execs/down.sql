DROP TABLE task_execs;
