ALTER TABLE task_execs DROP COLUMN own_retries;
DROP TABLE queues;
