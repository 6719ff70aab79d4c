DROP INDEX task_execs_finished;
