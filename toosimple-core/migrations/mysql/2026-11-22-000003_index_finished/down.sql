DROP INDEX task_execs_finished ON task_execs;
