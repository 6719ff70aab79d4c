DROP INDEX task_execs_flow ON task_execs;
ALTER TABLE task_execs DROP COLUMN flow_id;
DROP TABLE flow_steps;
DROP TABLE flows;
